"""Migrations on empty databases: they create the event store, and running them again changes
nothing; 0004 on a store that already holds idempotency records keeps them; 0006 chains the events
already stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from auth.key_store import auth_metadata
from tests.conftest import create_pg_database, drop_pg_database
from tests.support import age_command_records
from write_side.audit.verify import verify_chain
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore
from write_side.store.migrate import alembic_config, upgrade_to_head
from write_side.store.records import ANONYMOUS_CLIENT, ANY_CLIENT
from write_side.store.schema import commands, events, metadata

EVENT_STORE_TABLES = {"events", "snapshots", "commands", "personal_keys", "alembic_version"}


def head_revision() -> str:
    head: str = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    return head


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'bank.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        f"empty_{'pg' if request.param == 'postgresql' else 'sqlite'}_url"
    )
    return url


def inspect_database(url: str) -> dict[str, object]:
    engine = create_sync_store_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = set(inspector.get_table_names())
            state: dict[str, object] = {
                "tables": tables,
                "columns": {
                    t: [c["name"] for c in inspector.get_columns(t)] for t in sorted(tables)
                },
                "revision": MigrationContext.configure(conn).get_current_revision(),
            }
            if conn.dialect.name == "postgresql":
                state["functions"] = set(
                    conn.execute(
                        sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'bank_%'")
                    ).scalars()
                )
            return state
    finally:
        engine.dispose()


def test_migrating_an_empty_postgresql_database_creates_the_tables_and_the_append_function(
    empty_pg_url: str,
) -> None:
    assert inspect_database(empty_pg_url)["tables"] == set()

    upgrade_to_head(empty_pg_url)

    state = inspect_database(empty_pg_url)
    assert state["tables"] >= EVENT_STORE_TABLES
    assert state["functions"] == {"bank_append_batch", "bank_event_hash"}
    assert state["revision"] == head_revision()


def test_migrating_an_empty_sqlite_file_creates_the_tables(empty_sqlite_url: str) -> None:
    upgrade_to_head(empty_sqlite_url)

    state = inspect_database(empty_sqlite_url)
    assert state["tables"] >= EVENT_STORE_TABLES
    assert state["revision"] == head_revision()


def test_running_the_migrations_twice_is_a_no_op(empty_url: str) -> None:
    upgrade_to_head(empty_url)
    engine = create_sync_store_engine(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO snapshots VALUES ('s', 1, '{}', 1, CURRENT_TIMESTAMP)")
            )
        before = inspect_database(empty_url)

        upgrade_to_head(empty_url)

        assert inspect_database(empty_url) == before
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM snapshots")).scalar_one() == 1
    finally:
        engine.dispose()


def not_alembic_bookkeeping(
    name: str | None, type_: str, parent_names: dict[str, str | None]
) -> bool:
    table = name if type_ == "table" else parent_names.get("table_name")
    return table != "alembic_version"


def test_the_migrations_produce_exactly_the_schema_the_code_declares(empty_url: str) -> None:
    """The SQL schema is declared once in code (the store's tables in write_side/store/schema.py,
    the API keys' in auth/key_store.py); the migrations must produce exactly it, on both
    backends, or this fails: drift between the two cannot land."""
    upgrade_to_head(empty_url)
    engine = create_sync_store_engine(empty_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": not_alembic_bookkeeping, "compare_type": True}
            )
            differences = compare_metadata(context, [metadata, auth_metadata])
    finally:
        engine.dispose()

    assert differences == []


def _old_command_row(url: str) -> None:
    """What a pre-0004 store holds: a global idempotency record of a committed deposit."""
    engine = create_sync_store_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO commands (idempotency_key, fingerprint, stream_id, last_version,"
                    " last_position, result, recorded_at)"
                    " VALUES ('order-1', :fingerprint, 'acc-1', 2, 2, :result, :recorded_at)"
                ),
                {
                    "fingerprint": "f" * 64,
                    "result": '{"balance": "5.00"}',
                    "recorded_at": datetime.now(UTC),
                },
            )
    finally:
        engine.dispose()


async def test_upgrading_keeps_earlier_idempotency_records_answering_every_client(
    empty_url: str,
) -> None:
    command.upgrade(alembic_config(empty_url), "0003")
    _old_command_row(empty_url)

    upgrade_to_head(empty_url)

    engine = create_async_store_engine(empty_url)
    try:
        store = EventStore(engine)
        for client in ("key-1", "key-2", ANONYMOUS_CLIENT):
            found = await store.find_command(client, "order-1")
            assert found is not None
            assert (found.client, found.last_position, found.result) == (
                ANY_CLIENT,
                2,
                {"balance": "5.00"},
            )
        age_command_records(empty_url, timedelta(hours=25))
        assert await store.find_command("key-1", "order-1") is None
    finally:
        await engine.dispose()


def test_downgrading_0004_restores_one_record_per_key(empty_url: str) -> None:
    upgrade_to_head(empty_url)
    engine = create_sync_store_engine(empty_url)
    try:
        with engine.begin() as conn:
            for client in ("key-1", "key-2"):
                conn.execute(
                    commands.insert().values(
                        client=client,
                        idempotency_key="order-1",
                        fingerprint="f" * 64,
                        stream_id="acc-1",
                        last_version=1,
                        last_position=1,
                        result={},
                        recorded_at=datetime.now(UTC),
                    )
                )

        command.downgrade(alembic_config(empty_url), "0003")

        state = inspect_database(empty_url)
        assert "client" not in state["columns"]["commands"]  # type: ignore[index]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM commands")).scalar_one() == 1
        if "functions" in state:
            assert state["functions"] == {"bank_append", "bank_append_batch"}
    finally:
        engine.dispose()


def _events_written_before_0006(url: str) -> None:
    """Events as a 0005 store holds them (no hash), identical on both backends."""
    command.upgrade(alembic_config(url), "0005")
    moment = datetime(2026, 11, 29, 12, 0, 0, 654321, tzinfo=UTC)
    rows = [
        ("acc-1", 1, "AccountOpened", {"owner": 'Zoë 山田 "q"', "currency": "EUR"}),
        ("acc-1", 2, "MoneyDeposited", {"amount": "10.50", "reference": None}),
        ("acc-2", 1, "AccountOpened", {"owner": "B", "currency": "USD"}),
        (
            "acc-1",
            3,
            "TransferSent",
            {"transfer_id": "t", "counterparty": "acc-2", "amount": "1.00"},
        ),
    ]
    engine = create_sync_store_engine(url)
    try:
        with engine.begin() as conn:
            for n, (stream, version, kind, payload) in enumerate(rows):
                conn.execute(
                    events.insert().values(
                        stream_id=stream,
                        version=version,
                        event_id=uuid.UUID(int=n + 1),
                        type=kind,
                        payload=payload,
                        metadata={"tx": "x"} if n == 3 else {},
                        schema_version=2,
                        recorded_at=moment + timedelta(seconds=n),
                    )
                )
    finally:
        engine.dispose()


def test_0006_chains_the_events_already_stored_identically_on_both_backends(
    empty_pg_url: str, empty_sqlite_url: str
) -> None:
    hashes = []
    for url in (empty_pg_url, empty_sqlite_url):
        _events_written_before_0006(url)
        upgrade_to_head(url)
        engine = create_sync_store_engine(url)
        try:
            verdict = verify_chain(engine)
            with engine.connect() as conn:
                hashes.append(conn.execute(sa.select(events.c.hash)).scalars().all())
        finally:
            engine.dispose()
        assert verdict.ok, verdict.reason
        assert verdict.events == 4

    assert hashes[0] == hashes[1]
    assert all(hashes[0])


def test_downgrading_0006_drops_the_chain(empty_url: str) -> None:
    upgrade_to_head(empty_url)

    command.downgrade(alembic_config(empty_url), "0005")

    state = inspect_database(empty_url)
    assert "hash" not in state["columns"]["events"]  # type: ignore[index]
    assert state.get("functions", {"bank_append_batch"}) == {"bank_append_batch"}


def test_downgrading_0008_brings_back_the_separate_key_function(empty_url: str) -> None:
    upgrade_to_head(empty_url)

    command.downgrade(alembic_config(empty_url), "0007")

    state = inspect_database(empty_url)
    assert state["revision"] == "0007"
    assert "personal_keys" in state["tables"]  # type: ignore[operator]
    expected = {"bank_append_batch", "bank_event_hash", "bank_create_personal_keys"}
    assert state.get("functions", expected) == expected
    upgrade_to_head(empty_url)  # and up again
    assert inspect_database(empty_url)["revision"] == head_revision()
