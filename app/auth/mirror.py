"""Copies the live API keys from SQL into Redis, so that the query API never opens the SQL store.

Redis keeps nothing on disk here, so the mirror is rebuilt whole (by `bank apikey create/revoke`
and by the worker's periodic sweep) rather than patched: a rebuild also repairs any drift.
"""

from __future__ import annotations

import datetime as dt

import redis
import sqlalchemy as sa
from redis.typing import EncodableT, FieldT

from app.auth.key_store import live_key_scopes
from app.auth.mirror_layout import BUILT_MARKER, encode_scopes, mirror_key
from app.settings import Settings
from write_side.store.database import create_sync_store_engine

REDIS_TIMEOUT_S = 2.0


def write_mirror(client: redis.Redis, prefix: str, keys: dict[str, frozenset[str]]) -> None:
    """Replace the whole mirror in one MULTI/EXEC: readers see the old set or the new, never half."""
    mapping: dict[FieldT, EncodableT] = {
        token_hash: encode_scopes(scopes) for token_hash, scopes in keys.items()
    }
    mapping[BUILT_MARKER] = dt.datetime.now(dt.UTC).isoformat()
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(mirror_key(prefix))
        pipe.hset(mirror_key(prefix), mapping=mapping)
        pipe.execute()


def mirror_api_keys(
    settings: Settings,
    *,
    engine: sa.Engine | None = None,
    client: redis.Redis | None = None,
) -> int:
    """Rewrite the Redis mirror from the `api_keys` table; returns how many live keys it holds.

    Synchronous (the worker's sweep is a thread). Pass `engine`/`client` to reuse yours; otherwise
    the function opens its own and closes them before it returns.
    """
    own_engine = engine is None
    own_client = client is None
    engine = engine or create_sync_store_engine(settings.database_url)
    client = client or redis.Redis.from_url(
        settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    try:
        with engine.connect() as conn:
            keys = live_key_scopes(conn)
        write_mirror(client, settings.redis_prefix, keys)
        return len(keys)
    finally:
        if own_client:
            client.close()
        if own_engine:
            engine.dispose()
