"""The event store's contract, run against every backend (the `store` fixture is SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy.exc

from kernel.events import NewEvent
from tests.support import age_command_records, command_record_count, stored_snapshot
from write_side.store.database import create_sync_store_engine
from write_side.store.event_store import EventStore
from write_side.store.records import (
    ANONYMOUS_CLIENT,
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    Snapshot,
)
from write_side.store.retention import purge_expired_commands


def new_events(count: int, type_: str = "MoneyDeposited", **payload: Any) -> list[NewEvent]:
    return [NewEvent(type_, {"n": n, **payload}) for n in range(count)]


def command_record(
    key: str, fingerprint: str = "f" * 64, client: str = ANONYMOUS_CLIENT
) -> CommandRecord:
    return CommandRecord(key, fingerprint, "", 0, 0, {"balance": "12.50"}, client)


def store_url_of(store: EventStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


# --- appending ----------------------------------------------------------------------------------


async def test_appending_to_a_new_stream_starts_at_version_one(store: EventStore) -> None:
    result = await store.append("acc-1", new_events(1), expected_version=0)

    assert result.last_version == 1
    assert result.last_position == await store.head_position()
    assert await store.stream_version("acc-1") == 1


async def test_appending_with_the_expected_version_continues_the_stream(store: EventStore) -> None:
    await store.append("acc-1", new_events(2), expected_version=0)

    result = await store.append("acc-1", new_events(1), expected_version=2)

    assert result.last_version == 3
    assert [e.version for e in await store.read_stream("acc-1")] == [1, 2, 3]


@pytest.mark.parametrize("wrong_version", [0, 1, 3, 99])
async def test_a_wrong_expected_version_raises_concurrency_error_and_appends_nothing(
    store: EventStore, wrong_version: int
) -> None:
    await store.append("acc-1", new_events(2), expected_version=0)
    head = await store.head_position()

    with pytest.raises(ConcurrencyError) as caught:
        await store.append("acc-1", new_events(1), expected_version=wrong_version)

    assert caught.value.current_version == 2
    assert caught.value.expected_version == wrong_version
    assert await store.head_position() == head


async def test_an_empty_append_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError, match="at least one event"):
        await store.append("acc-1", [], expected_version=0)


async def test_racing_appends_with_the_same_expected_version_never_duplicate_a_version(
    store: EventStore,
) -> None:
    await store.append("acc-1", new_events(1), expected_version=0)

    results = await asyncio.gather(
        *(store.append("acc-1", new_events(2), expected_version=1) for _ in range(8)),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for r in losers)
    assert [e.version for e in await store.read_stream("acc-1")] == [1, 2, 3]


async def test_a_multi_event_append_is_numbered_densely_in_one_block(store: EventStore) -> None:
    await store.append("other", new_events(1), expected_version=0)

    result = await store.append("acc-1", new_events(5), expected_version=0)

    stream = await store.read_stream("acc-1")
    assert [e.version for e in stream] == [1, 2, 3, 4, 5]
    assert [e.payload["n"] for e in stream] == [0, 1, 2, 3, 4]
    positions = [e.position for e in stream]
    assert positions == sorted(positions)
    assert len(set(positions)) == 5
    assert (result.last_version, result.last_position) == (5, positions[-1])


async def test_streams_are_versioned_independently(store: EventStore) -> None:
    await store.append("a", new_events(3), expected_version=0)
    await store.append("b", new_events(1), expected_version=0)

    assert await store.stream_version("a") == 3
    assert await store.stream_version("b") == 1
    assert await store.stream_version("never-written") == 0


# --- reading ------------------------------------------------------------------------------------


async def test_read_stream_from_a_version_with_a_limit(store: EventStore) -> None:
    await store.append("acc-1", new_events(10), expected_version=0)
    await store.append("acc-2", new_events(3), expected_version=0)

    page = await store.read_stream("acc-1", after_version=4, limit=3)

    assert [e.version for e in page] == [5, 6, 7]
    assert {e.stream_id for e in page} == {"acc-1"}
    assert [e.version for e in await store.read_stream("acc-1", after_version=8)] == [9, 10]
    assert await store.read_stream("acc-1", after_version=10) == []
    assert await store.read_stream("unknown") == []


async def test_read_after_in_batches_returns_every_event_once_in_position_order(
    store: EventStore,
) -> None:
    appended: list[uuid.UUID] = []
    for round_ in range(5):
        for stream in ("a", "b", "c"):
            batch = new_events(round_ % 3 + 1)
            await store.append(stream, batch, await store.stream_version(stream))
            appended.extend(e.event_id for e in batch)

    seen = []
    checkpoint = 0
    while batch_read := await store.read_after(checkpoint, limit=4):
        assert len(batch_read) <= 4
        seen.extend(batch_read)
        checkpoint = batch_read[-1].position

    assert [e.event_id for e in seen] == appended
    positions = [e.position for e in seen]
    assert positions == sorted(set(positions))
    assert checkpoint == await store.head_position()
    assert await store.read_after(checkpoint) == []


async def test_head_position_is_zero_when_empty_then_the_last_position(store: EventStore) -> None:
    assert await store.head_position() == 0

    await store.append("a", new_events(2), expected_version=0)
    result = await store.append("b", new_events(3), expected_version=0)

    assert await store.head_position() == result.last_position
    assert (await store.read_after(0))[-1].position == result.last_position


async def test_an_event_id_is_unique_across_the_whole_store(store: EventStore) -> None:
    first = NewEvent("MoneyDeposited", {"amount": "1.00"})
    await store.append("a", [first], expected_version=0)
    head = await store.head_position()

    with pytest.raises(sqlalchemy.exc.IntegrityError):
        await store.append("b", [NewEvent("X", {}), NewEvent("Y", {}, event_id=first.event_id)], 0)

    assert await store.head_position() == head
    assert await store.read_stream("b") == []


async def test_every_stored_event_keeps_its_event_id_type_and_schema_version(
    store: EventStore,
) -> None:
    event = NewEvent("MoneyDeposited", {"amount": "1.00"}, schema_version=3)

    await store.append("a", [event], expected_version=0)

    (stored,) = await store.read_stream("a")
    assert (stored.event_id, stored.type, stored.schema_version) == (event.event_id, event.type, 3)
    assert isinstance(stored.event_id, uuid.UUID)


async def test_payload_and_metadata_round_trip_as_json(store: EventStore) -> None:
    payload = {
        "amount": "12.50",
        "owner": 'Zoë 李 🏦 "quoted" \\ back',
        "nested": {"list": [1, 2.5, None, True, False, "x"], "empty": {}},
        "big": 2**53 + 1,
    }
    metadata = {"command": "Deposit", "correlation_id": uuid.uuid4().hex, "idempotency_key": "k"}

    await store.append("a", [NewEvent("MoneyDeposited", payload, metadata)], 0)

    (stored,) = await store.read_stream("a")
    assert stored.payload == payload
    assert stored.metadata == metadata
    (via_read_after,) = await store.read_after(0)
    assert (via_read_after.payload, via_read_after.metadata) == (payload, metadata)


async def test_recorded_at_is_utc_aware_and_close_to_now(store: EventStore) -> None:
    before = datetime.now(UTC)

    await store.append("a", new_events(1), expected_version=0)

    (stored,) = await store.read_stream("a")
    assert stored.recorded_at.tzinfo is not None
    assert stored.recorded_at.utcoffset() == timedelta(0)
    assert (
        before - timedelta(seconds=5)
        <= stored.recorded_at
        <= datetime.now(UTC) + timedelta(seconds=5)
    )


async def test_recorded_at_is_utc_even_when_the_database_session_uses_another_time_zone(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libpq reads PGTZ when it connects: the session then answers timestamps in Tokyo time.
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")
    await store.engine.dispose()

    await store.append("a", new_events(1), expected_version=0)

    (stored,) = await store.read_stream("a")
    (tailed,) = await store.read_after(0)
    assert stored.recorded_at.utcoffset() == timedelta(0)
    assert tailed.recorded_at.utcoffset() == timedelta(0)


# --- idempotency records ------------------------------------------------------------------------


async def test_an_idempotency_record_is_written_with_the_events(store: EventStore) -> None:
    result = await store.append("acc-1", new_events(2), 0, command_record("key-1"))

    record = await store.find_command(ANONYMOUS_CLIENT, "key-1")

    assert record == CommandRecord(
        "key-1", "f" * 64, "acc-1", result.last_version, result.last_position, {"balance": "12.50"}
    )
    assert await store.find_command(ANONYMOUS_CLIENT, "key-2") is None


async def test_reusing_an_idempotency_key_raises_duplicate_command_and_appends_nothing(
    store: EventStore,
) -> None:
    first = await store.append("acc-1", new_events(1), 0, command_record("key-1"))
    head = await store.head_position()

    with pytest.raises(DuplicateCommand) as caught:
        await store.append("acc-1", new_events(1), 1, command_record("key-1", "other"))

    assert caught.value.record.fingerprint == "f" * 64
    assert caught.value.record.last_version == first.last_version
    assert caught.value.record.last_position == first.last_position
    assert caught.value.record.result == {"balance": "12.50"}
    assert await store.head_position() == head


async def test_a_duplicate_key_wins_over_a_wrong_expected_version(store: EventStore) -> None:
    # A retry of a command that already succeeded must be recognised, not reported as a conflict.
    await store.append("acc-1", new_events(1), 0, command_record("key-1"))

    with pytest.raises(DuplicateCommand):
        await store.append("acc-1", new_events(1), 0, command_record("key-1"))


async def test_a_refused_append_leaves_no_idempotency_record(store: EventStore) -> None:
    await store.append("acc-1", new_events(1), expected_version=0)

    with pytest.raises(ConcurrencyError):
        await store.append("acc-1", new_events(1), 0, command_record("key-1"))

    assert await store.find_command(ANONYMOUS_CLIENT, "key-1") is None


async def test_the_same_key_from_another_client_is_another_command(store: EventStore) -> None:
    first = await store.append("acc-1", new_events(1), 0, command_record("key-1", client="key-1"))

    second = await store.append("acc-1", new_events(1), 1, command_record("key-1", client="key-2"))

    assert second.last_version == first.last_version + 1
    found = await store.find_command("key-2", "key-1")
    assert found is not None
    assert (found.client, found.last_position) == ("key-2", second.last_position)
    assert await store.find_command("key-3", "key-1") is None


async def test_an_expired_record_is_ignored_and_a_new_command_takes_its_key(
    store: EventStore,
) -> None:
    await store.append("acc-1", new_events(1), 0, command_record("key-1"))
    age_command_records(store_url_of(store), timedelta(hours=25))  # retention: 24 h by default

    assert await store.find_command(ANONYMOUS_CLIENT, "key-1") is None
    again = await store.append("acc-1", new_events(1), 1, command_record("key-1", "other"))

    found = await store.find_command(ANONYMOUS_CLIENT, "key-1")
    assert found is not None
    assert (found.fingerprint, found.last_version) == ("other", again.last_version)
    assert command_record_count(store_url_of(store)) == 1


async def test_the_purge_deletes_expired_records_only(store: EventStore) -> None:
    await store.append("acc-1", new_events(1), 0, command_record("old"))
    age_command_records(store_url_of(store), timedelta(hours=25))
    await store.append("acc-1", new_events(1), 1, command_record("new"))
    engine = create_sync_store_engine(store_url_of(store))
    try:
        purged = purge_expired_commands(engine, timedelta(hours=24))
    finally:
        engine.dispose()

    assert purged == 1
    assert await store.find_command(ANONYMOUS_CLIENT, "new") is not None
    assert command_record_count(store_url_of(store)) == 1


# --- snapshots ----------------------------------------------------------------------------------


def snapshot(version: int, balance: str, schema_version: int = 1) -> Snapshot:
    state = {"owner": "Ada", "currency": "USD", "balance": balance, "is_open": True}
    return Snapshot("acc-1", version, state, schema_version, datetime.now(UTC))


async def test_a_stream_without_a_snapshot_has_none(store: EventStore) -> None:
    assert await stored_snapshot(store, "acc-1") is None


async def test_a_snapshot_round_trips_with_its_state_as_json(store: EventStore) -> None:
    saved = snapshot(100, "12.50")

    await store.save_snapshot(saved)

    loaded = await stored_snapshot(store, "acc-1")
    assert loaded is not None
    assert (loaded.stream_id, loaded.version, loaded.state, loaded.schema_version) == (
        "acc-1",
        100,
        saved.state,
        1,
    )
    assert loaded.taken_at.utcoffset() == timedelta(0)


async def test_a_newer_snapshot_replaces_the_older_one(store: EventStore) -> None:
    await store.save_snapshot(snapshot(100, "1.00"))

    await store.save_snapshot(snapshot(200, "2.00", schema_version=2))

    loaded = await stored_snapshot(store, "acc-1")
    assert loaded is not None
    assert (loaded.version, loaded.state["balance"], loaded.schema_version) == (200, "2.00", 2)


@pytest.mark.parametrize("older_version", [100, 199])
async def test_an_older_snapshot_never_replaces_a_newer_one(
    store: EventStore, older_version: int
) -> None:
    await store.save_snapshot(snapshot(200, "2.00"))

    await store.save_snapshot(snapshot(older_version, "1.00"))

    loaded = await stored_snapshot(store, "acc-1")
    assert loaded is not None
    assert (loaded.version, loaded.state["balance"]) == (200, "2.00")
