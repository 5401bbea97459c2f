"""`bank demo`: realistic random traffic through the real command path, for trying things out
and for benchmarks.

Each worker task owns a slice of the accounts and sends their commands one after another, so the
traffic is fast and never races itself; the commands still go through load → decide → append.
About a quarter of the commands, where two accounts of the slice share a currency and the sender can
pay, are transfers between them (two events, one per side, in one transaction), and about one in
twenty reverses one of the slice's recent transfers whose receiver can still pay it back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from kernel.master_key import master_key_of
from kernel.settings import Settings
from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount, ReverseTransfer, Transfer, Withdraw
from write_side.domain.errors import InsufficientFunds
from write_side.personal_data import PersonalData
from write_side.publisher import EventPublisher, NoPublisher
from write_side.repository import AccountRepository
from write_side.reversals import ReversalRunner
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys
from write_side.transfers import TransferRunner

OWNERS = ["Alice", "Bob", "Chandra", "Dilnoza", "Emeka", "Farah", "Goran", "Hana", "Ines", "Jun"]
CURRENCIES = ["USD", "USD", "USD", "EUR", "BDT"]
TRANSFER_SHARE = 0.25
REVERSAL_SHARE = 0.05
RECENT_TRANSFERS = 20
"""How many of a slice's latest transfers it may choose a reversal from."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class DemoReport:
    accounts: int
    events: int
    seconds: float


def _random_amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(1, 50_000)) / 100


@dataclass(slots=True)
class _Slice:
    """The accounts one task drives, with what it knows of their currencies and balances."""

    currencies: dict[str, str]
    balances: dict[str, Decimal]
    reversible: list[tuple[str, str, str, Decimal]] = field(default_factory=list)
    """Recent transfers not reversed yet: (transfer_id, from, to, amount)."""

    def transfer_pair(self, rng: random.Random, amount: Decimal) -> tuple[str, str] | None:
        """Two accounts of one currency, the first able to pay `amount`; None when none is."""
        source = rng.choice(list(self.currencies))
        targets = [
            a for a, c in self.currencies.items() if c == self.currencies[source] and a != source
        ]
        if not targets or self.balances[source] < amount:
            return None
        return source, rng.choice(targets)

    def moved(self, transfer_id: str, source: str, target: str, amount: Decimal) -> None:
        self.balances[source] -= amount
        self.balances[target] += amount
        self.reversible = [*self.reversible, (transfer_id, source, target, amount)]
        del self.reversible[:-RECENT_TRANSFERS]

    def take_reversible(self, rng: random.Random) -> tuple[str, str, str, Decimal] | None:
        """A recent transfer whose receiver can pay it back, taken off the list; None if none."""
        payable = [t for t in self.reversible if self.balances[t[2]] >= t[3]]
        if not payable:
            return None
        chosen = rng.choice(payable)
        self.reversible.remove(chosen)
        return chosen


async def _drive_slice(
    bus: CommandBus,
    transfers: TransferRunner,
    reversals: ReversalRunner,
    account_ids: list[str],
    events: int,
    rng: random.Random,
    done: list[int],
) -> None:
    state = _Slice({}, dict.fromkeys(account_ids, Decimal(0)))
    for account_id in account_ids:
        owner = f"{rng.choice(OWNERS)} {account_id[-4:]}"
        state.currencies[account_id] = rng.choice(CURRENCIES)
        await bus.execute(OpenAccount(owner, state.currencies[account_id], account_id))
        done[0] += 1
    sent = len(account_ids)
    while sent < events:
        amount = _random_amount(rng)
        two_left = events - sent >= 2  # a transfer or a reversal is two events, one per side
        pair = state.transfer_pair(rng, amount) if two_left else None
        roll = rng.random()
        undo = state.take_reversible(rng) if two_left and roll < REVERSAL_SHARE else None
        if undo is not None:
            transfer_id, source, target, amount = undo
            await reversals.execute(ReverseTransfer(transfer_id, "demo reversal"))
            state.balances[target] -= amount
            state.balances[source] += amount
            appended = 2
        elif pair is not None and roll < TRANSFER_SHARE:
            outcome = await transfers.execute(Transfer(pair[0], pair[1], amount))
            state.moved(outcome.result["transfer_id"], pair[0], pair[1], amount)
            appended = 2
        else:
            await _move_money(bus, state.balances, rng.choice(account_ids), amount, rng)
            appended = 1
        sent += appended
        done[0] += appended


async def _move_money(
    bus: CommandBus,
    balances: dict[str, Decimal],
    account_id: str,
    amount: Decimal,
    rng: random.Random,
) -> None:
    if balances[account_id] >= amount and rng.random() < 0.4:
        try:
            await bus.execute(Withdraw(account_id, amount))
            balances[account_id] -= amount
        except InsufficientFunds:  # only if someone else spent it meanwhile
            pass
    else:
        await bus.execute(Deposit(account_id, amount))
        balances[account_id] += amount


async def run_demo(
    settings: Settings,
    accounts: int,
    events: int,
    concurrency: int = 8,
    seed: int | None = None,
    publisher: EventPublisher | None = None,
    progress: Progress | None = None,
) -> DemoReport:
    """Open `accounts` accounts, then send commands until `events` events in all were appended."""
    rng = random.Random(seed)
    run_id = f"{rng.getrandbits(32):08x}"
    account_ids = [f"demo-{run_id}-{n:07d}" for n in range(accounts)]
    engine = create_async_store_engine(settings.store.database_url, pool_size=concurrency)
    store = EventStore(engine, settings.store.idempotency_retention)
    repository = CachedAccounts(
        AccountRepository(
            store,
            settings.store.snapshot_every,
            PersonalData(PersonalKeys(engine, master_key_of(settings))),
        )
    )
    publisher = publisher or NoPublisher()
    bus = CommandBus(repository, publisher, settings.store.command_deadline_ms / 1000)
    transfers = TransferRunner(bus, repository, publisher)
    reversals = ReversalRunner(bus, repository, store, publisher)
    slices = [
        account_ids[i::concurrency] for i in range(concurrency) if account_ids[i::concurrency]
    ]
    shares = [max(len(s), round(events * len(s) / accounts)) for s in slices]
    done = [0]
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(
            _drive_slice(bus, transfers, reversals, s, share, random.Random(rng.random()), done)
        )
        for s, share in zip(slices, shares, strict=True)
    ]
    try:
        while not all(task.done() for task in tasks):
            await asyncio.wait(tasks, timeout=1.0)
            if progress:
                progress(done[0], sum(shares))
        for task in tasks:
            task.result()
    finally:
        await engine.dispose()
    return DemoReport(accounts, done[0], time.perf_counter() - started)
