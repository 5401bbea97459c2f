"""What the auth middleware needs from a key store: token hash in, the caller (or None) out.

Each API brings its own: the write API reads SQL (`SqlKeyResolver`), the query API reads the Redis
mirror (`RedisKeyResolver`). `open`/`close` run in the app's lifespan, so no engine or client
exists before the app starts or after it stops.
"""

from __future__ import annotations

from typing import Protocol

from auth.guards import Principal


class KeyStoreUnavailable(Exception):
    """The keys could not be checked (store down, mirror not built yet): answer 503, not 401."""


class KeyResolver(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def __call__(self, token_hash: str) -> Principal | None:
        """The live key with this hash (its scopes, and its id where known); None when none has it."""
        ...
