"""The query API's key check: one HMGET on the Redis mirror, never the SQL store.

No cache here: the mirror is already in memory, and a revoke takes effect as soon as the mirror
is rewritten.
"""

from __future__ import annotations

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from auth.guards import Principal
from auth.mirror_layout import BUILT_MARKER, decode_scopes, mirror_key
from auth.resolver import KeyStoreUnavailable
from kernel.settings import Settings

REDIS_TIMEOUT_S = 1.0


class RedisKeyResolver:
    def __init__(self, redis_url: str, prefix: str) -> None:
        self._redis_url = redis_url
        self._key = mirror_key(prefix)
        self._client: redis.asyncio.Redis | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisKeyResolver:
        return cls(settings.redis.url, settings.redis.prefix)

    async def open(self) -> None:
        self._client = redis.asyncio.Redis.from_url(
            self._redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            # A pooled connection that died with a restarted Redis is retried on a new one.
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.005), 2),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, token_hash: str) -> Principal | None:
        if self._client is None:
            raise RuntimeError(
                "RedisKeyResolver.open() was not called (is the BearerAuth plugin on?)"
            )
        try:
            scopes, built = await self._client.hmget(self._key, [token_hash, BUILT_MARKER])
        except (RedisError, OSError) as exc:
            raise KeyStoreUnavailable(f"Redis is unreachable ({type(exc).__name__})") from exc
        if built is None:
            raise KeyStoreUnavailable(
                "the API-key mirror is not built yet (the worker rebuilds it)"
            )
        # The mirror holds scopes only: the query API keeps no per-client state.
        return None if scopes is None else Principal(decode_scopes(scopes))
