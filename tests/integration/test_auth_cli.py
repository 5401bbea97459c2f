"""`bank apikey create|list|revoke` against migrated PostgreSQL and SQLite databases and a real Redis:
the token is printed once, only its hash is stored, and the Redis mirror follows every change."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import click
import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner, Result
from redis.exceptions import WatchError

from app.apikey_cli import apikey
from auth.mirror import MirrorRewrite
from auth.mirror_layout import BUILT_MARKER, mirror_key
from auth.tokens import hash_token, looks_like_token
from kernel.events import MoneyDeposited, NewEvent
from tests.conftest import create_pg_database, drop_pg_database
from tests.support import wait_until
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore


@pytest.fixture
def bank() -> click.Group:
    """The `bank` command as the lead registers it: `bank.add_command(apikey)`."""
    group = click.Group("bank")
    group.add_command(apikey)
    return group


@pytest.fixture
def env(store_url: str, redis_url: str, redis_prefix: str) -> dict[str, str]:
    return {"DATABASE_URL": store_url, "REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix}


def run(bank: click.Group, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(bank, ["apikey", *args], env=env)


def stored_rows(url: str) -> list[dict[str, object]]:
    engine = create_sync_store_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text("SELECT * FROM api_keys"))]
    finally:
        engine.dispose()


def mirror(redis_url: str, prefix: str) -> dict[str, str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        fields: dict[str, str] = client.hgetall(mirror_key(prefix))
    return fields


def test_create_prints_the_token_once_on_the_last_line_and_stores_only_its_hash(
    bank: click.Group, env: dict[str, str]
) -> None:
    result = run(bank, env, "create", "--name", "ci", "--scope", "write", "--scope", "read")

    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    token = lines[-1]
    assert looks_like_token(token)
    assert result.stdout.count(token) == 1
    rows = stored_rows(env["DATABASE_URL"])
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hash_token(token)
    assert all(token not in str(value) for value in rows[0].values())
    assert rows[0]["scopes"] == "write read"
    fields = mirror(env["REDIS_URL"], env["REDIS_PREFIX"])
    assert json.loads(fields[hash_token(token)]) == ["write", "read"]
    assert BUILT_MARKER in fields


def test_list_shows_name_scopes_created_and_revoked_but_never_the_token(
    bank: click.Group, env: dict[str, str]
) -> None:
    first = run(bank, env, "create", "--name", "reporting", "--scope", "read").stdout
    second = run(bank, env, "create", "--name", "ops", "--scope", "admin").stdout
    assert run(bank, env, "revoke", "reporting").exit_code == 0

    result = run(bank, env, "list")

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.strip().splitlines()
    assert header.split() == ["NAME", "SCOPES", "CREATED", "REVOKED"]
    by_name = {row.split()[0]: row.split() for row in rows}
    assert by_name["reporting"][1] == "read"
    assert by_name["reporting"][3] != "-"
    assert by_name["ops"][1] == "admin"
    assert by_name["ops"][3] == "-"
    for token in (first.strip().splitlines()[-1], second.strip().splitlines()[-1]):
        assert token not in result.output
        assert hash_token(token) not in result.output


def test_revoke_marks_the_key_and_removes_it_from_the_mirror(
    bank: click.Group, env: dict[str, str]
) -> None:
    token = (
        run(bank, env, "create", "--name", "old", "--scope", "read").stdout.strip().splitlines()[-1]
    )

    result = run(bank, env, "revoke", "old")

    assert result.exit_code == 0, result.output
    assert stored_rows(env["DATABASE_URL"])[0]["revoked_at"] is not None
    assert hash_token(token) not in mirror(env["REDIS_URL"], env["REDIS_PREFIX"])
    again = run(bank, env, "revoke", "old")
    assert again.exit_code != 0
    assert "no live API key is named 'old'" in again.output


def test_a_live_name_cannot_be_reused_but_a_revoked_one_can(
    bank: click.Group, env: dict[str, str]
) -> None:
    assert run(bank, env, "create", "--name", "svc", "--scope", "read").exit_code == 0

    duplicate = run(bank, env, "create", "--name", "svc", "--scope", "read")
    assert duplicate.exit_code != 0
    assert "a live key named 'svc' exists" in duplicate.output

    assert run(bank, env, "revoke", "svc").exit_code == 0
    assert run(bank, env, "create", "--name", "svc", "--scope", "write").exit_code == 0


def test_create_refuses_unknown_scopes_and_odd_names(
    bank: click.Group, env: dict[str, str]
) -> None:
    assert run(bank, env, "create", "--name", "x", "--scope", "root").exit_code == 2
    assert run(bank, env, "create", "--name", "no spaces", "--scope", "read").exit_code == 2
    assert run(bank, env, "create", "--name", "x").exit_code == 2
    assert stored_rows(env["DATABASE_URL"]) == []


def test_create_still_shows_the_token_when_redis_is_down(
    bank: click.Group, env: dict[str, str]
) -> None:
    result = run(
        bank,
        {**env, "REDIS_URL": "redis://127.0.0.1:1/0"},
        "create",
        "--name",
        "k",
        "--scope",
        "read",
    )

    assert result.exit_code == 0, result.output
    assert looks_like_token(result.stdout.strip().splitlines()[-1])
    assert "Redis mirror could not be updated" in result.stderr


@pytest.fixture
def unmigrated_pg_url() -> Iterator[str]:
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def test_an_unmigrated_database_says_run_bank_migrate_first(
    bank: click.Group, unmigrated_pg_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    for url in (unmigrated_pg_url, f"sqlite:///{tmp_path / 'empty.db'}"):
        result = run(bank, {"DATABASE_URL": url, "REDIS_PREFIX": redis_prefix}, "list")

        assert result.exit_code == 1
        assert "run `bank migrate` first" in result.output
        assert "Traceback" not in result.output


def test_an_unreachable_database_is_one_clear_line(bank: click.Group, redis_prefix: str) -> None:
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/bank", "REDIS_PREFIX": redis_prefix}

    result = run(bank, env, "create", "--name", "k", "--scope", "read")

    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: could not create the API key: the database is unreachable"
    )
    assert len(result.output.strip().splitlines()) == 1


class BusyWriter(threading.Thread):
    """Appends commands to the store without pause, as a busy write API does."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="busy-writer", daemon=True)
        self.database_url = database_url
        self.appends = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        asyncio.run(self._append_until_stopped())

    async def _append_until_stopped(self) -> None:
        engine = create_async_store_engine(self.database_url)
        store = EventStore(engine)
        try:
            for version in itertools.count():
                if self.stopped.is_set():
                    return
                event = MoneyDeposited(amount=Decimal("1.00"))
                await store.append("busy", [NewEvent.from_domain(event)], version)
                self.appends += 1
        finally:
            await engine.dispose()


def test_create_and_revoke_on_sqlite_wait_for_a_busy_writer_instead_of_failing_locked(
    bank: click.Group, sqlite_url: str, redis_url: str, redis_prefix: str
) -> None:
    env = {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix}
    writer = BusyWriter(sqlite_url)
    writer.start()
    try:
        wait_until(lambda: writer.appends > 0, timeout=10, what="the writer to append")
        for n in range(20):
            created = run(bank, env, "create", "--name", f"k{n}", "--scope", "read")
            assert created.exit_code == 0, created.output
            revoked = run(bank, env, "revoke", f"k{n}")
            assert revoked.exit_code == 0, revoked.output
        assert writer.is_alive(), "the writer kept appending throughout"
    finally:
        writer.stopped.set()
        writer.join(timeout=10)


def test_a_sweep_that_read_the_keys_before_a_revoke_cannot_write_them_back(
    bank: click.Group, env: dict[str, str]
) -> None:
    token = run(bank, env, "create", "--name", "leaky", "--scope", "read").stdout.splitlines()[-1]
    engine = create_sync_store_engine(env["DATABASE_URL"])
    try:
        with (
            redis.Redis.from_url(env["REDIS_URL"]) as client,
            MirrorRewrite(client, engine, env["REDIS_PREFIX"]) as stale_sweep,
        ):
            stale_sweep.read()
            assert hash_token(token) in stale_sweep.keys

            assert run(bank, env, "revoke", "leaky").exit_code == 0

            with pytest.raises(WatchError):
                stale_sweep.write()
    finally:
        engine.dispose()
    assert hash_token(token) not in mirror(env["REDIS_URL"], env["REDIS_PREFIX"])


def test_revoke_with_redis_down_revokes_in_sql_and_says_how_long_the_apis_may_still_accept_it(
    bank: click.Group, env: dict[str, str]
) -> None:
    assert run(bank, env, "create", "--name", "k", "--scope", "read").exit_code == 0

    result = run(bank, {**env, "REDIS_URL": "redis://127.0.0.1:1/0"}, "revoke", "k")

    assert result.exit_code == 1
    assert "revoked 'k' in the database, but the Redis mirror could not be updated" in result.output
    assert "the write API for up to 5 s" in result.output
    assert "Traceback" not in result.output
    assert stored_rows(env["DATABASE_URL"])[0]["revoked_at"] is not None
