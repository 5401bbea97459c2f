"""Snapshots through AccountRepository: a long history loads from its latest snapshot plus a short tail."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy.exc

from kernel.events import DomainEvent
from tests.support import stored_snapshot
from write_side.domain.account import SNAPSHOT_SCHEMA_VERSION, SNAPSHOT_UPCASTERS, BankAccount
from write_side.repository import AccountRepository
from write_side.store.event_store import EventStore
from write_side.store.records import Snapshot

SNAPSHOT_EVERY = 100


def cents(n: int) -> Decimal:
    """A varied, exact amount: 0.01, 0.02, ... so that a lost or doubled event shows in the sum."""
    return Decimal(n % 997 + 1) / 100


async def save_deposits(
    repository: AccountRepository, account: BankAccount, first: int, count: int
) -> Decimal:
    """Decide `count` deposits on `account` and save them in one append, as the command bus does."""
    expected_version = account.version
    decided: list[DomainEvent] = []
    for n in range(first, first + count):
        decided.extend(account.deposit(cents(n)))
    await repository.save(account, decided, expected_version, {"command": "Deposit"})
    return sum((cents(n) for n in range(first, first + count)), Decimal("0.00"))


async def test_an_account_with_ten_thousand_events_loads_replaying_at_most_snapshot_every_events(
    store: EventStore,
) -> None:
    repository = AccountRepository(store, SNAPSHOT_EVERY)
    account = BankAccount("busy")
    await repository.save(account, account.open("Ada", "USD"), 0, {})
    total = Decimal("0.00")
    for first in range(0, 9_980, 499):  # appends of 499 events cross a multiple of 100 each time
        total += await save_deposits(repository, account, first, min(499, 9_980 - first))
    for n in range(9_980, 10_036):  # and a few single commands on top, like real traffic
        total += await save_deposits(repository, account, n, 1)

    loaded = await repository.load("busy")

    assert await store.stream_version("busy") == 10_037
    assert loaded.account.version == 10_037
    assert loaded.events_replayed <= SNAPSHOT_EVERY
    assert loaded.events_replayed == 10_037 - 10_000
    assert loaded.account.balance == total
    assert loaded.account == BankAccount.rebuild(
        "busy", [e.to_domain() for e in await store.read_stream("busy")]
    )


async def test_the_repository_snapshots_each_time_a_multiple_of_snapshot_every_is_crossed(
    store: EventStore,
) -> None:
    repository = AccountRepository(store, snapshot_every=5)
    account = BankAccount("acc-1")
    await repository.save(account, account.open("Ada", "USD"), 0, {})
    await save_deposits(repository, account, 0, 3)  # version 4: no multiple of 5 crossed
    assert await stored_snapshot(store, "acc-1") is None

    await save_deposits(repository, account, 3, 3)  # version 7: crossed 5

    snapshot = await stored_snapshot(store, "acc-1")
    assert snapshot is not None
    assert snapshot.version == 7
    assert snapshot.schema_version == SNAPSHOT_SCHEMA_VERSION
    assert BankAccount.from_snapshot("acc-1", 7, snapshot.state) == account
    assert (await repository.load("acc-1")).events_replayed == 0


async def test_a_snapshot_older_than_the_upcasters_reach_is_ignored(store: EventStore) -> None:
    repository = AccountRepository(store, SNAPSHOT_EVERY)
    account = BankAccount("acc-1")
    await repository.save(account, account.open("Ada", "USD"), 0, {})
    total = await save_deposits(repository, account, 0, 20)
    stale_state = {"owner": "Ada", "balance_cents": 999_999}  # a shape the code no longer reads
    await store.save_snapshot(
        Snapshot(
            "acc-1", 15, stale_state, SNAPSHOT_UPCASTERS.oldest_readable - 1, datetime.now(UTC)
        )
    )

    loaded = await repository.load("acc-1")

    assert loaded.events_replayed == 21
    assert loaded.account.version == 21
    assert loaded.account.balance == total


async def test_a_snapshot_of_the_current_schema_is_trusted_over_replaying(
    store: EventStore,
) -> None:
    # Proves load really starts from the snapshot: a doctored snapshot shows up in the balance.
    repository = AccountRepository(store, SNAPSHOT_EVERY)
    account = BankAccount("acc-1")
    await repository.save(account, account.open("Ada", "USD"), 0, {})
    await save_deposits(repository, account, 0, 20)
    doctored = {**account.snapshot_state(), "balance": "0.00"}
    await store.save_snapshot(
        Snapshot("acc-1", 21, doctored, SNAPSHOT_SCHEMA_VERSION, datetime.now(UTC))
    )

    loaded = await repository.load("acc-1")

    assert loaded.events_replayed == 0
    assert loaded.account.balance == Decimal("0.00")


class SnapshotsFail(EventStore):
    """A store whose snapshot writes fail, as when the database hiccups after the append."""

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        raise sqlalchemy.exc.OperationalError("INSERT INTO snapshots", {}, OSError("gone"))


async def test_a_failed_snapshot_write_loses_no_events(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    failing = SnapshotsFail(store.engine)
    repository = AccountRepository(failing, snapshot_every=2)
    account = BankAccount("acc-1")
    await repository.save(account, account.open("Ada", "USD"), 0, {})

    total = await save_deposits(repository, account, 0, 3)

    loaded = await repository.load("acc-1")
    assert (loaded.account.version, loaded.account.balance) == (4, total)
    assert await stored_snapshot(store, "acc-1") is None
    assert "not saved" in caplog.text
