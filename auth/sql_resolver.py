"""The write API's key check: the `api_keys` table, behind a short in-process cache.

The cache keeps a found key for `ttl_s` seconds (5 by default), so a busy API asks the database
about each key a few times a minute. A revoke still bites at once: `bank apikey revoke` announces
it over Redis and the `RevocationListener` drops the key from the cache. Only while that feed is
down (Redis unreachable) can a revoked key live on, for at most `ttl_s`.
Unknown tokens are not cached: a key created a moment ago works at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.guards import Principal, key_id_of
from auth.key_store import load_live_key
from auth.resolver import KeyStoreUnavailable
from auth.revocations import RevocationListener
from kernel.settings import Settings

DEFAULT_TTL_S = 5.0
MAX_CACHED_KEYS = 10_000
POOL_SIZE = 2

_UNAVAILABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    OSError,
)


class SqlKeyResolver:
    def __init__(
        self,
        engine_factory: Callable[[], AsyncEngine],
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        revocations: RevocationListener | None = None,
    ) -> None:
        self._engine_factory = engine_factory
        self._ttl_s = ttl_s
        self._clock = clock
        self._revocations = revocations
        self._engine: AsyncEngine | None = None
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._forgotten = 0  # counts forget calls, so a read that straddles one is not cached

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine_factory: Callable[[], AsyncEngine],
        *,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> SqlKeyResolver:
        """`engine_factory` opens the key store's engine when the API starts (its own small pool
        of POOL_SIZE connections: auth keeps working however busy the command path's pool is)."""
        revocations = RevocationListener(settings.redis.url, settings.redis.prefix)
        return cls(engine_factory, ttl_s=ttl_s, revocations=revocations)

    async def open(self) -> None:
        self._engine = self._engine_factory()
        if self._revocations is not None:
            await self._revocations.start(self.forget, self.forget_all)

    async def close(self) -> None:
        if self._revocations is not None:
            await self._revocations.stop()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __call__(self, token_hash: str) -> Principal | None:
        now = self._clock()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        forgotten_before = self._forgotten
        principal = await self._load(token_hash)
        if principal is None:
            self._cache.pop(token_hash, None)
            return None
        if self._forgotten != forgotten_before:
            return (
                principal  # a revoke was heard during the read, which may predate it: don't cache
            )
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[token_hash] = (principal, now + self._ttl_s)
        return principal

    def forget(self, token_hash: str) -> None:
        """Drop one key from the cache (it was revoked): its next request asks the database."""
        self._forgotten += 1
        self._cache.pop(token_hash, None)

    def forget_all(self) -> None:
        """Empty the cache (revocations may have been missed while the feed was down)."""
        self._forgotten += 1
        self._cache.clear()

    async def _load(self, token_hash: str) -> Principal | None:
        if self._engine is None:
            raise RuntimeError(
                "SqlKeyResolver.open() was not called (is the BearerAuth plugin on?)"
            )
        try:
            async with self._engine.connect() as conn:
                live = await load_live_key(conn, token_hash)
        except _UNAVAILABLE as exc:
            raise KeyStoreUnavailable(
                f"the key store is unreachable ({type(exc).__name__})"
            ) from exc
        if live is None:
            return None
        row_id, scopes = live
        return Principal(scopes, key_id_of(row_id))
