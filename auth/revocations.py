"""Revocations announced over Redis pub/sub, so a write API drops a revoked key from its cache at once.

`bank apikey revoke` publishes the key's hash on `{prefix}:auth:revoked`; every write API process
listens (`RevocationListener`, started by `SqlKeyResolver`) and forgets that key, so its next request
goes to SQL and is refused. Pub/sub keeps nothing for a listener that is not connected, so a
listener forgets every cached key each time it (re)subscribes; while it is disconnected, the
cache's TTL is what bounds a revoke. The query API needs no listener: it caches nothing and reads
the Redis mirror, from which the revoke deletes the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis
import redis.asyncio
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 1.0
HEALTH_CHECK_S = 5
RETRY_S = 0.5
MAX_RETRY_S = 5.0


def revocation_channel(prefix: str) -> str:
    return f"{prefix}:auth:revoked"


def announce_revocation(client: redis.Redis, prefix: str, token_hash: str) -> None:
    client.publish(revocation_channel(prefix), token_hash)


class RevocationListener:
    """Calls `forget(token_hash)` for each announced revocation and `forget_all()` on every
    (re)subscription, from a task that lives between `start()` and `stop()`."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self._redis_url = redis_url
        self._channel = revocation_channel(prefix)
        self._task: asyncio.Task[None] | None = None

    async def start(self, forget: Callable[[str], None], forget_all: Callable[[], None]) -> None:
        """Subscribes before returning when Redis answers, so a revoke right after startup is heard;
        otherwise the task keeps trying in the background."""
        try:
            first: PubSub | None = await self._subscribe()
        except (RedisError, OSError) as exc:
            log.warning("not listening for API-key revocations yet (%s); retrying", exc)
            first = None
        self._task = asyncio.create_task(self._listen(first, forget, forget_all))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(
        self, pubsub: PubSub | None, forget: Callable[[str], None], forget_all: Callable[[], None]
    ) -> None:
        delay = RETRY_S
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    log.warning("listening for API-key revocations again")
                forget_all()  # revocations announced while nobody listened were lost
                delay = RETRY_S
                await self._relay(pubsub, forget)
            except (RedisError, OSError) as exc:
                if pubsub is not None:  # once per outage: failed resubscriptions stay quiet
                    log.warning(
                        "lost the API-key revocation feed (%s); the cache TTL bounds a revoke", exc
                    )
            finally:
                if pubsub is not None:
                    await _close(pubsub)
                    pubsub = None
            await asyncio.sleep(delay)  # back off while Redis is away
            delay = min(2 * delay, MAX_RETRY_S)

    async def _subscribe(self) -> PubSub:
        client = redis.asyncio.Redis.from_url(
            self._redis_url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            # No silent reconnect: a reconnect must be seen, since messages were lost meanwhile.
            retry=Retry(NoBackoff(), 0),
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            confirmed = await pubsub.get_message(timeout=CONNECT_TIMEOUT_S)
            if confirmed is None or confirmed["type"] != "subscribe":
                raise RedisError("Redis did not confirm the subscription")
        except BaseException:
            await _close(pubsub)
            raise
        return pubsub

    @staticmethod
    async def _relay(pubsub: PubSub, forget: Callable[[str], None]) -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                data = message["data"]
                forget(data.decode() if isinstance(data, bytes) else str(data))


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    with contextlib.suppress(RedisError, OSError):
        await pubsub.connection_pool.disconnect()
