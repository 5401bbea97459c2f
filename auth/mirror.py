"""Copies the live API keys from SQL into Redis, so that the query API never opens the SQL store.

Redis keeps nothing on disk here, so the mirror is rebuilt whole (by `bank apikey create/revoke`,
by `bank up` and by the worker's periodic sweep) rather than patched: a rebuild also repairs any
drift. Writers race (a sweep may read SQL just before a revoke commits and write just after the
revoke's own rewrite), so each rewrite WATCHes the mirror from before its SQL read and is redone
if another rewrite landed meanwhile: the last rewrite to land always read SQL last.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import redis
import sqlalchemy as sa
from redis.client import Pipeline
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from auth.key_store import live_key_scopes
from auth.mirror_layout import BUILT_MARKER, encode_scopes, mirror_key
from kernel.settings import Settings

REDIS_TIMEOUT_S = 2.0
REWRITE_ATTEMPTS = 5


def mirror_client(redis_url: str) -> redis.Redis:
    """A short-lived client for one-off mirror updates (the CLI, `bank up`)."""
    return redis.Redis.from_url(
        redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


def write_mirror(pipe: Pipeline, prefix: str, keys: dict[str, frozenset[str]]) -> None:
    """Queue the replacement of the whole mirror: readers see the old set or the new, never half."""
    mapping: dict[FieldT, EncodableT] = {
        token_hash: encode_scopes(scopes) for token_hash, scopes in keys.items()
    }
    mapping[BUILT_MARKER] = dt.datetime.now(dt.UTC).isoformat()
    pipe.multi()
    pipe.delete(mirror_key(prefix))
    pipe.hset(mirror_key(prefix), mapping=mapping)


class MirrorRewrite:
    """One rewrite in two steps (a context manager): `read()` WATCHes the mirror, then reads SQL;
    `write()` replaces the mirror with what was read, or raises WatchError if another rewrite
    landed in between."""

    def __init__(self, client: redis.Redis, engine: sa.Engine, prefix: str) -> None:
        self._pipe = client.pipeline(transaction=True)
        self._engine = engine
        self._prefix = prefix
        self.keys: dict[str, frozenset[str]] = {}

    def read(self) -> None:
        self._pipe.watch(mirror_key(self._prefix))  # type: ignore[no-untyped-call]  # untyped
        with self._engine.connect() as conn:
            self.keys = live_key_scopes(conn)

    def write(self) -> int:
        write_mirror(self._pipe, self._prefix, self.keys)
        self._pipe.execute()
        return len(self.keys)

    def __enter__(self) -> MirrorRewrite:
        return self

    def __exit__(self, *_: object) -> None:
        self._pipe.reset()  # unwatches and gives the connection back to the pool


def _rewrite(client: redis.Redis, engine: sa.Engine, prefix: str) -> int:
    with MirrorRewrite(client, engine, prefix) as rewrite:
        rewrite.read()
        return rewrite.write()


def mirror_api_keys(
    settings: Settings,
    *,
    engine: sa.Engine,
    client: redis.Redis | None = None,
) -> int:
    """Rewrite the Redis mirror from the `api_keys` table; returns how many live keys it holds.

    Synchronous (the worker's sweep is a thread). Pass `client` to reuse yours; otherwise the
    function opens its own and closes it before it returns.
    """
    own_client = client is None
    client = client or mirror_client(settings.redis.url)
    try:
        for _ in range(REWRITE_ATTEMPTS - 1):
            with contextlib.suppress(WatchError):
                return _rewrite(client, engine, settings.redis.prefix)
        return _rewrite(client, engine, settings.redis.prefix)  # its WatchError is a RedisError
    finally:
        if own_client:
            client.close()
