"""The key `bank up` prints: created once with every scope, kept in a private file, reused after."""

from __future__ import annotations

import stat
from pathlib import Path

import sqlalchemy as sa

from app.stack import mirror_keys_now
from auth.key_store import list_keys, revoke_key
from auth.local_key import LOCAL_KEY_NAME
from auth.redis_resolver import RedisKeyResolver
from auth.tokens import hash_token, looks_like_token
from tests.support import local_key, make_settings
from write_side.store.database import create_sync_store_engine


def keys_named_local(url: str) -> list[tuple[frozenset[str], bool]]:
    engine = create_sync_store_engine(url)
    try:
        with engine.connect() as conn:
            keys = list_keys(conn)
    finally:
        engine.dispose()
    return [(key.scopes, key.revoked_at is None) for key in keys if key.name == LOCAL_KEY_NAME]


def revoke_local(url: str) -> None:
    engine = create_sync_store_engine(url)
    try:
        with engine.begin() as conn:
            assert revoke_key(conn, LOCAL_KEY_NAME)
    finally:
        engine.dispose()


def test_the_first_call_creates_an_all_scopes_key_and_a_private_key_file(
    store_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "var" / "local-api-key"

    token = local_key(store_url, key_file)

    assert looks_like_token(token)
    assert key_file.read_text().strip() == token
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert keys_named_local(store_url) == [(frozenset({"write", "read", "admin"}), True)]


def test_later_calls_reuse_the_saved_key(sqlite_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "local-api-key"
    settings = make_settings(database_url=sqlite_url)

    first = local_key(settings.store.database_url, key_file)

    assert local_key(settings.store.database_url, key_file) == first
    assert len(keys_named_local(sqlite_url)) == 1


def test_a_revoked_local_key_is_replaced(sqlite_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "local-api-key"
    settings = make_settings(database_url=sqlite_url)
    first = local_key(settings.store.database_url, key_file)
    revoke_local(sqlite_url)

    second = local_key(settings.store.database_url, key_file)

    assert second != first
    assert key_file.read_text().strip() == second
    assert sorted(live for _, live in keys_named_local(sqlite_url)) == [False, True]


def test_a_lost_key_file_replaces_the_unusable_key_instead_of_keeping_two(
    sqlite_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "local-api-key"
    settings = make_settings(database_url=sqlite_url)
    first = local_key(settings.store.database_url, key_file)
    key_file.unlink()

    second = local_key(settings.store.database_url, key_file)

    assert second != first
    engine = create_sync_store_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            live = conn.execute(
                sa.text("SELECT token_hash FROM api_keys WHERE revoked_at IS NULL")
            ).scalars()
            assert list(live) == [hash_token(second)]
    finally:
        engine.dispose()


async def test_bank_up_puts_a_replaced_local_key_in_the_mirror_without_waiting_for_a_sweep(
    sqlite_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url=sqlite_url, redis_url=redis_url, redis_prefix=redis_prefix
    )
    key_file = tmp_path / "local-api-key"
    old = local_key(settings.store.database_url, key_file)
    mirror_keys_now(settings, redis_url)
    key_file.unlink()  # lost: the next start replaces the key
    new = local_key(settings.store.database_url, key_file)

    mirror_keys_now(settings, redis_url)  # what `bank up` does before it starts any process

    resolver = RedisKeyResolver.from_settings(settings)
    await resolver.open()
    try:
        principal = await resolver(hash_token(new))
        assert principal is not None
        assert principal.scopes == frozenset({"write", "read", "admin"})
        assert await resolver(hash_token(old)) is None
    finally:
        await resolver.close()
