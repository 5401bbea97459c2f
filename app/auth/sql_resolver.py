"""The write API's key check: the `api_keys` table, behind a short in-process cache.

The cache keeps a found key for `ttl_s` seconds (5 by default), so a busy API asks the database
about each key a few times a minute; the price is that a revoke takes up to `ttl_s` to bite.
Unknown tokens are not cached: a key created a moment ago works at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.guards import Principal, key_id_of
from app.auth.key_store import load_live_key
from app.auth.resolver import KeyStoreUnavailable
from app.settings import Settings
from write_side.store.database import create_async_store_engine

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
        database_url: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database_url = database_url
        self._ttl_s = ttl_s
        self._clock = clock
        self._engine: AsyncEngine | None = None
        self._cache: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, ttl_s: float = DEFAULT_TTL_S) -> SqlKeyResolver:
        return cls(settings.database_url, ttl_s=ttl_s)

    async def open(self) -> None:
        # Its own small pool: auth keeps working however busy the command path's pool is.
        self._engine = create_async_store_engine(self._database_url, pool_size=POOL_SIZE)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __call__(self, token_hash: str) -> Principal | None:
        now = self._clock()
        cached = self._cache.get(token_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = await self._load(token_hash)
        if principal is None:
            self._cache.pop(token_hash, None)
            return None
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[token_hash] = (principal, now + self._ttl_s)
        return principal

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
