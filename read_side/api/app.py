"""The query API: its own Litestar app and process, reading the read models from Redis only.

The Redis client is opened in the lifespan and closed on shutdown; nothing connects at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from auth.middleware import BearerAuth
from auth.redis_resolver import RedisKeyResolver
from kernel.read_model_layout import ReadModelKeys
from kernel.settings import Settings
from read_side.api.errors import EXCEPTION_HANDLERS
from read_side.api.routes import ROUTES, STATE_KEY, QueryReads
from read_side.api.stream_routes import STREAM_ROUTES
from read_side.change_hub import BLOCK_MS, ChangeHub
from read_side.change_log import ChangeLog
from read_side.dashboard.routes import DASHBOARD_ROUTES
from read_side.freshness import LISTEN_S, CheckpointWatcher
from read_side.history import HistoryReader
from read_side.pipelined_redis import PipelinedRedis
from read_side.readers import ReadModelReader
from web.observer import observe

SOCKET_TIMEOUT_S = 2.0
MAX_REDIS_CONNECTIONS = 64


def _provide_hub(state: State) -> ChangeHub:
    hub: ChangeHub = state.hub
    return hub


def _provide_change_log(state: State) -> ChangeLog:
    log: ChangeLog = state.change_log
    return log


def create_query_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def redis_client(app: Litestar) -> AsyncIterator[None]:
        # A blocking pool: a burst of requests waits for a free connection instead of failing
        # with "too many connections" (which would be a 503 for no reason).
        pool = BlockingConnectionPool.from_url(
            settings.redis.url,
            max_connections=MAX_REDIS_CONNECTIONS,
            timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=30,
            # A pooled connection that died with a restarted Redis is retried on a new one.
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), 2),
        )
        client = Redis(connection_pool=pool)
        hot = (
            PipelinedRedis(settings.redis.url, SOCKET_TIMEOUT_S)
            if PipelinedRedis.supports(settings.redis.url)
            else None
        )
        reader = ReadModelReader(client, settings.redis.prefix, hot)
        keys = ReadModelKeys(settings.redis.prefix)
        # The checkpoint announcements are followed on a connection of their own too.
        subscriber = Redis.from_url(
            settings.redis.url,
            decode_responses=True,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=LISTEN_S + SOCKET_TIMEOUT_S,
        )
        watcher = CheckpointWatcher(reader, subscriber, keys.checkpoints)
        app.state[STATE_KEY] = QueryReads(
            reader, HistoryReader(client, settings.redis.prefix), watcher
        )
        app.state.change_log = ChangeLog(client, keys)
        # The hub's blocking XREAD gets a connection of its own, with a timeout beyond the block.
        hub_client = Redis.from_url(
            settings.redis.url,
            decode_responses=True,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=BLOCK_MS / 1000 + SOCKET_TIMEOUT_S,
        )
        app.state.hub = ChangeHub(hub_client, keys)
        try:
            yield
        finally:
            await app.state.hub.close()
            await hub_client.aclose()
            await watcher.close()
            await subscriber.aclose()
            await client.aclose()
            await pool.aclose()
            if hot is not None:
                await hot.aclose()

    app = Litestar(
        route_handlers=[*ROUTES, *STREAM_ROUTES, *DASHBOARD_ROUTES],
        lifespan=[redis_client],
        dependencies={
            "hub": Provide(_provide_hub, sync_to_thread=False),
            "change_log": Provide(_provide_change_log, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,  # the process configures logging (app/logs.py)
        plugins=[
            BearerAuth(RedisKeyResolver.from_settings(settings), enabled=settings.auth.enabled)
        ],
        openapi_config=OpenAPIConfig(
            title="Bank ledger: query API",
            version="1.0.0",
            description="Balances, statements and dashboards, served from the Redis read models.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
    )
    return observe(app, "query")
