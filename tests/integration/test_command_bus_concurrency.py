"""Racing commands on PostgreSQL: no overdraft, no lost update, no duplicate version."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from write_side.command_bus import CommandBus, CommandOutcome
from write_side.commands import Deposit, OpenAccount, Withdraw
from write_side.domain.errors import InsufficientFunds, VersionConflict
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.event_store import EventStore

pytestmark = pytest.mark.postgres


@pytest.fixture
async def bus(pg_store: EventStore) -> CommandBus:
    bus = CommandBus(AccountRepository(pg_store, snapshot_every=7), NoPublisher(), deadline_s=30)
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    await bus.execute(Deposit("acc-1", Decimal("200.00")))
    return bus


async def test_fifty_parallel_withdrawals_of_ten_against_two_hundred_give_exactly_twenty(
    bus: CommandBus, pg_store: EventStore
) -> None:
    results = await asyncio.gather(
        *(bus.execute(Withdraw("acc-1", Decimal("10.00"))) for _ in range(50)),
        return_exceptions=True,
    )

    successes = [r for r in results if isinstance(r, CommandOutcome)]
    refusals = [r for r in results if isinstance(r, InsufficientFunds)]
    assert (len(successes), len(refusals)) == (20, 30), results
    assert sorted(o.balance for o in successes) == [Decimal(10 * n) for n in range(20)]
    stream = await pg_store.read_stream("acc-1")
    assert [e.version for e in stream] == list(range(1, 23))
    assert sorted(o.version for o in successes) == list(range(3, 23))
    loaded = await AccountRepository(pg_store, snapshot_every=7).load("acc-1")
    assert loaded.account.balance == Decimal("0.00")


async def test_racing_commands_with_the_same_expected_version_let_exactly_one_succeed(
    bus: CommandBus, pg_store: EventStore
) -> None:
    results = await asyncio.gather(
        *(bus.execute(Withdraw("acc-1", Decimal("1.00"), expected_version=2)) for _ in range(10)),
        return_exceptions=True,
    )

    successes = [r for r in results if isinstance(r, CommandOutcome)]
    conflicts = [r for r in results if isinstance(r, VersionConflict)]
    assert (len(successes), len(conflicts)) == (1, 9), results
    assert successes[0].version == 3
    assert all(c.expected_version == 2 and c.current_version == 3 for c in conflicts)
    assert [e.version for e in await pg_store.read_stream("acc-1")] == [1, 2, 3]
