"""Builds the write API: routes, error mapping and the lifespan that owns the engine and publisher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import sqlalchemy as sa
import sqlalchemy.exc
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin

from auth.middleware import BearerAuth
from auth.sql_resolver import POOL_SIZE as KEY_STORE_POOL_SIZE
from auth.sql_resolver import SqlKeyResolver
from kernel.master_key import master_key_of
from kernel.settings import Settings
from web.metrics import PROMETHEUS_TEXT, exposition
from web.observer import observe
from write_side.account_cache import CachedAccounts
from write_side.api import ledger_routes, routes
from write_side.api.errors import EXCEPTION_HANDLERS
from write_side.api.schemas import HealthResponse
from write_side.batches import BatchRunner
from write_side.command_bus import CommandBus
from write_side.metrics import count_command
from write_side.personal_data import PersonalData
from write_side.publisher import EventPublisher
from write_side.repository import AccountRepository
from write_side.reversals import ReversalRunner
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys
from write_side.transfers import TransferRunner

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
HEALTH_TIMEOUT_S = 2.0

PublisherFactory = Callable[[Settings], EventPublisher]


@get(
    "/health",
    summary="200 when the event store answers, 503 otherwise",
    responses={
        503: ResponseSpec(
            HealthResponse, description="The store does not answer.", generate_examples=False
        )
    },
)
async def health(state: State) -> Response[HealthResponse]:
    store: EventStore = state.store
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), store.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (sqlalchemy.exc.SQLAlchemyError, OSError, TimeoutError):
        return Response(HealthResponse("unavailable", "unreachable"), status_code=503)
    return Response(HealthResponse("ok", "ok"))


@get(
    "/metrics",
    summary="Prometheus metrics of every worker process of this server",
    media_type=PROMETHEUS_TEXT,
)
async def metrics() -> Response[bytes]:
    return exposition()


def create_write_app(settings: Settings, publisher_factory: PublisherFactory) -> Litestar:
    """The write API. `publisher_factory` makes what tells the read side about commits (the
    shell passes the projectors' nudge; tests may pass a publisher that does nothing)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_async_store_engine(settings.store.database_url)
        publisher = publisher_factory(settings)
        store = EventStore(engine, settings.store.idempotency_retention)
        personal_data = PersonalData(PersonalKeys(engine, master_key_of(settings)))
        repository = CachedAccounts(
            AccountRepository(store, settings.store.snapshot_every, personal_data)
        )
        app.state.store = store
        app.state.personal_data = personal_data
        bus = CommandBus(repository, publisher, settings.store.command_deadline_ms / 1000)
        app.state.bus = bus
        app.state.transfers = TransferRunner(bus, repository, publisher)
        app.state.batches = BatchRunner(bus, repository, publisher)
        app.state.reversals = ReversalRunner(bus, repository, store, publisher)
        try:
            yield
        finally:
            await publisher.close()
            await engine.dispose()

    app = Litestar(
        route_handlers=[
            routes.open_account,
            routes.deposit,
            routes.withdraw,
            routes.close_account,
            routes.set_overdraft_limit,
            ledger_routes.transfer,
            ledger_routes.reverse_transfer,
            ledger_routes.batch,
            routes.account_events,
            health,
            metrics,
        ],
        lifespan=[lifespan],
        plugins=[BearerAuth(_key_resolver(settings), enabled=settings.auth.enabled)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,  # the process configures logging (app/logs.py)
        openapi_config=OpenAPIConfig(
            title="Bank ledger: write API",
            version="1.0.0",
            description="Commands in; events appended to the event store.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        debug=False,
    )
    return observe(app, "write", count_command)


def _key_resolver(settings: Settings) -> SqlKeyResolver:
    return SqlKeyResolver.from_settings(
        settings,
        lambda: create_async_store_engine(
            settings.store.database_url, pool_size=KEY_STORE_POOL_SIZE
        ),
    )
