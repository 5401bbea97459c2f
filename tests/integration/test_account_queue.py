"""Commands for one busy account queue up and are appended together, on each backend.

Commands gathered in one step of the event loop reach the account's queue before its drain task
runs, so they are decided as one group: one append, whose events share a `tx` id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from kernel.events import RecordedEvent
from tests.support import stored_snapshot
from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus, CommandOutcome
from write_side.commands import Deposit, OpenAccount, Withdraw
from write_side.domain.errors import InsufficientFunds, VersionConflict
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

SNAPSHOT_EVERY = 100


def _bus(store: EventStore) -> CommandBus:
    repository = CachedAccounts(AccountRepository(store, snapshot_every=SNAPSHOT_EVERY))
    return CommandBus(repository, NoPublisher(), deadline_s=30)


@pytest.fixture
async def bus(store: EventStore) -> CommandBus:
    bus = _bus(store)
    await bus.execute(OpenAccount("Ada", account_id="hot"))
    return bus


@pytest.fixture
async def other_store(store_url: str) -> AsyncIterator[EventStore]:
    """The same database through another engine and cache: what a second process sees."""
    engine = create_async_store_engine(store_url)
    try:
        yield EventStore(engine)
    finally:
        await engine.dispose()


def _by_version(stream: list[RecordedEvent]) -> dict[int, RecordedEvent]:
    return {event.version: event for event in stream}


def _assert_answers_match_the_store(
    outcomes: list[CommandOutcome], stream: list[RecordedEvent]
) -> None:
    """Every acknowledged command is in the store once, at the version and position it was told."""
    stored = _by_version(stream)
    assert [event.version for event in stream] == list(range(1, len(stream) + 1))
    assert len({outcome.version for outcome in outcomes}) == len(outcomes)
    for outcome in outcomes:
        assert stored[outcome.version].position == outcome.position


async def test_commands_gathered_together_are_appended_in_one_append(
    bus: CommandBus, store: EventStore
) -> None:
    outcomes = await asyncio.gather(
        *(bus.execute(Deposit("hot", Decimal(n))) for n in range(1, 11))
    )

    assert [o.version for o in outcomes] == list(range(2, 12))
    assert [o.balance for o in outcomes] == [Decimal(n * (n + 1) // 2) for n in range(1, 11)]
    stream = await store.read_stream("hot")
    _assert_answers_match_the_store(outcomes, stream)
    assert len({event.metadata["tx"] for event in stream[1:]}) == 1
    assert len({event.metadata["correlation_id"] for event in stream[1:]}) == 10


async def test_a_refused_command_in_a_group_appends_nothing_and_fails_no_other(
    bus: CommandBus, store: EventStore
) -> None:
    results = await asyncio.gather(
        bus.execute(Deposit("hot", Decimal("10.00"))),
        bus.execute(Withdraw("hot", Decimal("1000.00"))),
        bus.execute(Withdraw("hot", Decimal("4.00"))),
        bus.execute(Deposit("hot", Decimal("5.00"))),
        return_exceptions=True,
    )

    first, refused, withdrawn, last = results
    assert isinstance(refused, InsufficientFunds)
    assert isinstance(first, CommandOutcome)
    assert isinstance(withdrawn, CommandOutcome)
    assert isinstance(last, CommandOutcome)
    assert [(o.version, o.balance) for o in (first, withdrawn, last)] == [
        (2, Decimal("10.00")),
        (3, Decimal("6.00")),
        (4, Decimal("11.00")),
    ]
    stream = await store.read_stream("hot")
    assert [event.type for event in stream] == [
        "AccountOpened",
        "MoneyDeposited",
        "MoneyWithdrawn",
        "MoneyDeposited",
    ]
    assert stream[2].payload["amount"] == "4.00"
    _assert_answers_match_the_store([first, withdrawn, last], stream)


async def test_a_request_cancelled_before_its_group_is_decided_appends_nothing(
    bus: CommandBus, store: EventStore
) -> None:
    tasks = [
        asyncio.create_task(bus.execute(Deposit("hot", Decimal(amount))))
        for amount in ("1.00", "2.00", "4.00")
    ]
    await asyncio.sleep(0)  # each task has queued its command; the account's drain has not run
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    first, cancelled, last = results
    assert isinstance(cancelled, asyncio.CancelledError)
    assert isinstance(first, CommandOutcome)
    assert isinstance(last, CommandOutcome)
    assert [(o.version, o.balance) for o in (first, last)] == [(2, Decimal(1)), (3, Decimal(5))]
    assert [e.payload["amount"] for e in (await store.read_stream("hot"))[1:]] == ["1.00", "4.00"]


async def test_idempotency_keys_inside_groups_replay_their_own_outcome(
    bus: CommandBus, store: EventStore
) -> None:
    keys = [None, "key-a", None, None, "key-b", "key-c"]
    outcomes = await asyncio.gather(
        *(bus.execute(Deposit("hot", Decimal(n + 1)), key) for n, key in enumerate(keys))
    )
    head = await store.head_position()

    replays = await asyncio.gather(
        *(
            bus.execute(Deposit("hot", Decimal(n + 1)), key)
            for n, key in enumerate(keys)
            if key is not None
        )
    )

    first_time = [o for o, key in zip(outcomes, keys, strict=True) if key is not None]
    assert [(r.version, r.position, r.balance) for r in replays] == [
        (o.version, o.position, o.balance) for o in first_time
    ]
    assert all(r.replayed for r in replays)
    assert await store.head_position() == head
    stream = await store.read_stream("hot")
    _assert_answers_match_the_store(outcomes, stream)
    keyed = {e.metadata["idempotency_key"]: e for e in stream if "idempotency_key" in e.metadata}
    assert sorted(keyed) == ["key-a", "key-b", "key-c"]
    for outcome, key in zip(outcomes, keys, strict=True):
        if key is not None:
            assert keyed[key].version == outcome.version


async def test_expected_versions_inside_a_group_are_checked_in_order(
    bus: CommandBus, store: EventStore
) -> None:
    results = await asyncio.gather(
        *(bus.execute(Deposit("hot", Decimal("1.00"), expected_version=1)) for _ in range(5)),
        bus.execute(Deposit("hot", Decimal("1.00"), expected_version=2)),
        return_exceptions=True,
    )

    successes = [r for r in results if isinstance(r, CommandOutcome)]
    conflicts = [r for r in results if isinstance(r, VersionConflict)]
    assert [s.version for s in successes] == [2, 3]
    assert len(conflicts) == 4
    assert all((c.expected_version, c.current_version) == (1, 2) for c in conflicts)
    assert await store.stream_version("hot") == 3


async def test_a_group_crossing_a_hundred_events_leaves_a_snapshot_of_its_end(
    bus: CommandBus, store: EventStore
) -> None:
    await asyncio.gather(*(bus.execute(Deposit("hot", Decimal("1.00"))) for _ in range(150)))

    snapshot = await stored_snapshot(store, "hot")
    assert snapshot is not None
    assert snapshot.version == 151
    assert snapshot.state["balance"] == "150.00"
    loaded = await AccountRepository(store, snapshot_every=SNAPSHOT_EVERY).load("hot")
    assert (loaded.account.version, loaded.account.balance) == (151, Decimal("150.00"))


async def test_two_processes_on_one_hot_account_lose_nothing_and_never_overdraw(
    bus: CommandBus, store: EventStore, other_store: EventStore
) -> None:
    """Each bus has its own engine, cache and queues; the store's expected version arbitrates
    between them, and a group that lost the race is decided again on fresh state."""
    other = _bus(other_store)
    await bus.execute(Deposit("hot", Decimal("50.00")))
    commands = [
        Withdraw("hot", Decimal("3.00")) if n % 3 == 0 else Deposit("hot", Decimal("1.00"))
        for n in range(120)
    ]

    results = await asyncio.gather(
        *((bus if n % 2 else other).execute(c) for n, c in enumerate(commands)),
        return_exceptions=True,
    )

    assert all(isinstance(r, CommandOutcome | InsufficientFunds) for r in results), results
    outcomes = [r for r in results if isinstance(r, CommandOutcome)]
    stream = await store.read_stream("hot")
    assert len(stream) == 2 + len(outcomes)
    _assert_answers_match_the_store(outcomes, stream)
    balance = Decimal(0)
    by_version = {o.version: o for o in outcomes}
    for event in stream[1:]:
        amount = Decimal(event.payload["amount"])
        balance += amount if event.type == "MoneyDeposited" else -amount
        assert balance >= 0
        if event.version in by_version:
            assert by_version[event.version].balance == balance
    expected = Decimal("50.00") + sum(
        (
            -c.amount if isinstance(c, Withdraw) else c.amount
            for c, r in zip(commands, results, strict=True)
            if isinstance(r, CommandOutcome)
        ),
        Decimal(0),
    )
    assert balance == expected
