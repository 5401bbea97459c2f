"""The in-memory account cache: one round trip for a busy account, and never a wrong answer when
another process (another command bus on the same store) changed the account meanwhile."""

from __future__ import annotations

from decimal import Decimal

import pytest

from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount, Withdraw
from write_side.domain.errors import InsufficientFunds
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository, LoadedAccount
from write_side.store.event_store import EventStore


class CountingRepository(AccountRepository):
    """Counts loads from the store."""

    loads = 0

    async def load(self, account_id: str, *, fresh: bool = True) -> LoadedAccount:
        self.loads += 1
        return await super().load(account_id)


def _bus(store: EventStore) -> tuple[CommandBus, CountingRepository]:
    repository = CountingRepository(store, snapshot_every=100)
    return CommandBus(CachedAccounts(repository), NoPublisher(), deadline_s=5), repository


async def test_commands_on_a_cached_account_do_not_load_it_from_the_store(
    store: EventStore,
) -> None:
    bus, repository = _bus(store)
    await bus.execute(OpenAccount("Ada", "USD", "a"))
    for _ in range(5):
        await bus.execute(Deposit("a", Decimal("1.00")))
    assert repository.loads == 1  # only the open, which found nothing cached
    outcome = await bus.execute(Deposit("a", Decimal("1.00")))
    assert outcome.version == 7
    assert outcome.balance == Decimal("6.00")


async def test_a_stale_cached_account_conflicts_and_is_retried_on_fresh_state(
    store: EventStore,
) -> None:
    first, _ = _bus(store)
    second, _ = _bus(store)
    await first.execute(OpenAccount("Ada", "USD", "a"))
    await first.execute(Deposit("a", Decimal("10.00")))  # cached in `first` at version 2
    await second.execute(Deposit("a", Decimal("5.00")))  # version 3, behind `first`'s back
    outcome = await first.execute(Deposit("a", Decimal("1.00")))
    assert outcome.version == 4
    assert outcome.balance == Decimal("16.00")


async def test_a_refusal_decided_on_a_stale_cache_is_confirmed_on_fresh_state(
    store: EventStore,
) -> None:
    first, _ = _bus(store)
    second, _ = _bus(store)
    await first.execute(OpenAccount("Ada", "USD", "a"))  # cached with balance 0
    await second.execute(Deposit("a", Decimal("100.00")))
    outcome = await first.execute(Withdraw("a", Decimal("50.00")))
    assert outcome.balance == Decimal("50.00")
    with pytest.raises(InsufficientFunds):
        await first.execute(Withdraw("a", Decimal("60.00")))


async def test_an_expected_version_is_checked_against_the_store_not_a_stale_cache(
    store: EventStore,
) -> None:
    first, _ = _bus(store)
    second, _ = _bus(store)
    await first.execute(OpenAccount("Ada", "USD", "a"))  # cached at version 1
    await second.execute(Deposit("a", Decimal("1.00")))  # version 2
    outcome = await first.execute(Deposit("a", Decimal("1.00"), expected_version=2))
    assert outcome.version == 3
