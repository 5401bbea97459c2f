"""How one process runs transfers: a transfer id is looked up before deciding only when the client
chose it (an id generated for the request cannot have been claimed; its append still claims it
once), and transfers sharing an account wait for each other instead of losing version races."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount, Transfer
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository, LoadedAccount
from write_side.store.event_store import EventStore
from write_side.store.records import TransferRecord
from write_side.transfers import TransferRunner

pytestmark = pytest.mark.postgres


class CountedLookups(CachedAccounts):
    """The write API's repository, noting every lookup of a transfer id and every fresh load (a
    lost version race reloads its accounts fresh)."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(AccountRepository(store, 100))
        self.lookups: list[str] = []
        self.fresh_loads = 0

    async def load(self, account_id: str, *, fresh: bool = False) -> LoadedAccount:
        self.fresh_loads += fresh
        return await super().load(account_id, fresh=fresh)

    async def find_transfer(self, transfer_id: str) -> TransferRecord | None:
        self.lookups.append(transfer_id)
        return await super().find_transfer(transfer_id)


async def _runner(store: EventStore) -> tuple[TransferRunner, CountedLookups]:
    accounts = CountedLookups(store)
    bus = CommandBus(accounts, NoPublisher(), 5.0)
    for account_id in ("a", "b"):
        await bus.execute(OpenAccount("Ada", "USD", account_id))
    await bus.execute(Deposit("a", Decimal("10.00")))
    return TransferRunner(bus, accounts, NoPublisher()), accounts


async def _sides(store: EventStore, transfer_id: str) -> list[str]:
    return [
        e.type
        for e in await store.read_after(0, limit=1000)
        if e.payload.get("transfer_id") == transfer_id
    ]


async def test_a_generated_transfer_id_is_claimed_without_a_lookup(pg_store: EventStore) -> None:
    runner, accounts = await _runner(pg_store)
    outcome = await runner.execute(Transfer("a", "b", Decimal("1.00")))
    transfer_id = outcome.result["transfer_id"]
    assert accounts.lookups == []
    assert await pg_store.find_transfer(transfer_id) is not None
    assert await _sides(pg_store, transfer_id) == ["TransferSent", "TransferReceived"]


async def test_a_client_transfer_id_is_looked_up_and_a_retry_is_answered_once(
    pg_store: EventStore,
) -> None:
    runner, accounts = await _runner(pg_store)
    first = await runner.execute(Transfer("a", "b", Decimal("1.00"), "t-1"))
    retry = await runner.execute(Transfer("a", "b", Decimal("1.00"), "t-1"))
    assert accounts.lookups == ["t-1", "t-1"]
    assert not first.replayed
    assert retry.replayed
    assert retry.result == first.result
    assert await _sides(pg_store, "t-1") == ["TransferSent", "TransferReceived"]


async def test_transfers_sharing_accounts_wait_for_each_other_instead_of_racing(
    pg_store: EventStore,
) -> None:
    runner, accounts = await _runner(pg_store)
    both_ways = [
        Transfer(*pair, Decimal("0.10")) for pair in [("a", "b"), ("b", "a"), ("a", "b")] * 10
    ]
    outcomes = await asyncio.gather(*(runner.execute(t) for t in both_ways))
    assert accounts.fresh_loads == 0
    sent = [o.result["from"]["balance"] for o in outcomes if o.result["from"]["account_id"] == "a"]
    assert len(sent) == 20
    assert (await accounts.load("a", fresh=True)).account.balance == Decimal("9.00")
    assert (await accounts.load("b", fresh=True)).account.balance == Decimal("1.00")
