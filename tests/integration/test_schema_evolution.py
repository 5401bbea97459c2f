"""Events stored in an older shape load through the upcasters: aggregates and projections alike."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kernel.events import SCHEMA_VERSION, NewEvent
from kernel.upcasting import CannotUpcast
from projectors import balances, statements
from write_side.domain.account import SNAPSHOT_SCHEMA_VERSION
from write_side.repository import AccountRepository
from write_side.store.event_store import EventStore
from write_side.store.records import Snapshot

FIRST_SHAPES = [
    NewEvent("AccountOpened", {"owner": "Old Timer", "currency": "EUR"}, schema_version=1),
    NewEvent("MoneyDeposited", {"amount": "10.00"}, schema_version=1),
    NewEvent("MoneyWithdrawn", {"amount": "2.50"}, schema_version=1),
]


async def test_an_account_stored_in_the_first_shapes_loads_and_takes_new_commands(
    store: EventStore,
) -> None:
    await store.append("old", FIRST_SHAPES, expected_version=0)
    repository = AccountRepository(store, snapshot_every=100)

    loaded = (await repository.load("old")).account
    assert (loaded.owner, loaded.balance, loaded.version) == ("Old Timer", Decimal("7.50"), 3)

    decided = loaded.deposit(Decimal("1.25"), reference="invoice 7")
    await repository.save(loaded, decided, expected_version=3, metadata={})
    stored = await store.read_stream("old")
    assert [e.schema_version for e in stored] == [1, 1, 1, SCHEMA_VERSION]
    assert stored[-1].payload == {"amount": "1.25", "reference": "invoice 7"}
    assert (await repository.load("old")).account.balance == Decimal("8.75")


async def test_projections_fold_events_of_both_shapes(store: EventStore) -> None:
    await store.append("old", FIRST_SHAPES, expected_version=0)
    await store.append(
        "old",
        [NewEvent("MoneyDeposited", {"amount": "1.00", "reference": "r"}, schema_version=2)],
        expected_version=3,
    )
    events = await store.read_after(0)

    balance = balances.fold({"old": None}, events).after["old"]
    assert (balance.balance, balance.version) == (850, 4)
    entries = statements.fold({"old": None}, events).entries["old"]
    assert [e.amount for e in entries] == ["0.00", "10.00", "-2.50", "1.00"]


async def test_a_snapshot_of_a_readable_schema_version_is_used(store: EventStore) -> None:
    await store.append("old", FIRST_SHAPES, expected_version=0)
    state = {
        "owner": "Old Timer",
        "currency": "EUR",
        "balance": "99.00",  # differs from the events on purpose: proves the snapshot was read
        "is_open": True,
        "is_closed": False,
    }
    await store.save_snapshot(Snapshot("old", 3, state, 1, datetime.now(UTC)))  # no limit yet
    loaded = await AccountRepository(store, snapshot_every=100).load("old")
    assert (loaded.account.balance, loaded.events_replayed) == (Decimal("99.00"), 0)
    assert loaded.account.overdraft_limit == Decimal("0.00")
    assert SNAPSHOT_SCHEMA_VERSION == 4
    assert loaded.account.personal_data_erased is False
    assert loaded.account.holds == {}


async def test_an_event_written_by_newer_code_is_refused_never_misread(store: EventStore) -> None:
    """Proves every reader passes the stored schema version to the upcasters: read as today's
    shape, this payload would decode without complaint."""
    await store.append("old", FIRST_SHAPES[:1], expected_version=0)
    from_the_future = NewEvent("MoneyDeposited", {"amount": "1.00"}, schema_version=99)
    await store.append("old", [from_the_future], expected_version=1)

    with pytest.raises(CannotUpcast, match="newer"):
        await AccountRepository(store, snapshot_every=100).load("old")
    events = await store.read_after(0)
    with pytest.raises(CannotUpcast):
        balances.fold({"old": None}, events)
    with pytest.raises(CannotUpcast):
        statements.fold({"old": None}, events)
