"""Multi-stream appends (a transfer's two sides, an atomic batch): one transaction, all or nothing,
each stream checked against its own expected version. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from kernel.events import NewEvent
from write_side.store.event_store import EventStore
from write_side.store.records import (
    ConcurrencyError,
    TransferExists,
    TransferRecord,
)


def event(kind: str = "MoneyDeposited", amount: str = "1.00") -> NewEvent:
    return NewEvent(kind, {"amount": amount})


async def open_streams(store: EventStore, *streams: str) -> None:
    for stream in streams:
        await store.append(stream, [event("AccountOpened")], expected_version=0)


async def test_events_for_two_streams_are_appended_together_in_the_order_given(
    store: EventStore,
) -> None:
    await open_streams(store, "a", "b")

    result = await store.append_many(
        [("a", event(amount="5.00")), ("b", event(amount="5.00")), ("a", event())],
        {"a": 1, "b": 1},
    )

    assert result.versions == {"a": 3, "b": 2}
    written = await store.read_after(2)
    assert [(e.stream_id, e.version) for e in written] == [("a", 2), ("b", 2), ("a", 3)]
    assert result.last_position == written[-1].position
    assert len({e.metadata["tx"] for e in written}) == 1, "one transaction id for the append"


async def test_a_stale_version_on_any_stream_appends_nothing_on_every_stream(
    store: EventStore,
) -> None:
    await open_streams(store, "a", "b")
    await store.append("b", [event()], expected_version=1)  # b moved on
    head = await store.head_position()

    with pytest.raises(ConcurrencyError) as raised:
        await store.append_many([("a", event()), ("b", event())], {"a": 1, "b": 1})

    assert (raised.value.stream_id, raised.value.current_version) == ("b", 2)
    assert await store.head_position() == head


async def test_a_transfer_id_is_claimed_once_for_the_whole_ledger(store: EventStore) -> None:
    await open_streams(store, "a", "b", "c")
    first = TransferRecord("t-1", "f" * 64, {"status": "posted"})
    await store.append_many([("a", event()), ("b", event())], {"a": 1, "b": 1}, transfers=[first])
    head = await store.head_position()

    again = TransferRecord("t-1", "e" * 64, {"status": "posted"})
    with pytest.raises(TransferExists) as raised:
        await store.append_many([("c", event())], {"c": 1}, transfers=[again])

    assert raised.value.record.fingerprint == "f" * 64
    assert raised.value.record.last_position == head
    assert await store.head_position() == head
    assert await store.find_transfer("t-1") == raised.value.record
    assert await store.find_transfer("t-2") is None


async def test_an_append_needs_an_expected_version_for_every_stream_it_writes(
    store: EventStore,
) -> None:
    with pytest.raises(ValueError, match="no expected version"):
        await store.append_many([("a", event()), ("b", event())], {"a": 0})


async def test_opposite_transfers_racing_never_deadlock_and_never_write_half(
    store: EventStore,
) -> None:
    await open_streams(store, "a", "b")

    async def move(source: str, target: str) -> bool:
        while True:
            versions = {s: await store.stream_version(s) for s in (source, target)}
            try:
                await store.append_many([(source, event()), (target, event())], versions)
                return True
            except ConcurrencyError:
                await asyncio.sleep(0)

    done = await asyncio.wait_for(
        asyncio.gather(*(move(*pair) for pair in [("a", "b"), ("b", "a")] * 20)), timeout=60
    )

    assert all(done)
    assert await store.stream_version("a") == await store.stream_version("b") == 41
    written = await store.read_after(2, limit=1000)
    by_tx: dict[str, set[str]] = {}
    for e in written:
        by_tx.setdefault(e.metadata["tx"], set()).add(e.stream_id)
    assert len(by_tx) == 40
    assert all(streams == {"a", "b"} for streams in by_tx.values())
