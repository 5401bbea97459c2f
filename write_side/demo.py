"""`bank demo`: realistic random traffic through the real command path, for trying things out
and for benchmarks.

Each worker task owns a slice of the accounts and sends their commands one after another, so the
traffic is fast and never races itself; the commands still go through load → decide → append.
About a quarter of the commands, where two accounts of the slice share a currency and the sender can
pay, are transfers between them (two events, one per side, in one transaction).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from kernel.master_key import master_key_of
from kernel.settings import Settings
from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount, Transfer, Withdraw
from write_side.domain.errors import InsufficientFunds
from write_side.personal_data import PersonalData
from write_side.publisher import EventPublisher, NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys
from write_side.transfers import TransferRunner

OWNERS = ["Alice", "Bob", "Chandra", "Dilnoza", "Emeka", "Farah", "Goran", "Hana", "Ines", "Jun"]
CURRENCIES = ["USD", "USD", "USD", "EUR", "BDT"]

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

    def transfer_pair(self, rng: random.Random, amount: Decimal) -> tuple[str, str] | None:
        """Two accounts of one currency, the first able to pay `amount`; None when none is."""
        source = rng.choice(list(self.currencies))
        targets = [
            a for a, c in self.currencies.items() if c == self.currencies[source] and a != source
        ]
        if not targets or self.balances[source] < amount:
            return None
        return source, rng.choice(targets)


async def _drive_slice(
    bus: CommandBus,
    transfers: TransferRunner,
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
        pair = state.transfer_pair(rng, amount) if events - sent >= 2 else None
        if pair is not None and rng.random() < 0.25:
            source, target = pair
            await transfers.execute(Transfer(source, target, amount))
            state.balances[source] -= amount
            state.balances[target] += amount
            appended = 2  # a transfer is two events, one per side
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
    repository = CachedAccounts(
        AccountRepository(
            EventStore(engine, settings.store.idempotency_retention),
            settings.store.snapshot_every,
            PersonalData(PersonalKeys(engine, master_key_of(settings))),
        )
    )
    publisher = publisher or NoPublisher()
    bus = CommandBus(repository, publisher, settings.store.command_deadline_ms / 1000)
    transfers = TransferRunner(bus, repository, publisher)
    slices = [
        account_ids[i::concurrency] for i in range(concurrency) if account_ids[i::concurrency]
    ]
    shares = [max(len(s), round(events * len(s) / accounts)) for s in slices]
    done = [0]
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(
            _drive_slice(bus, transfers, s, share, random.Random(rng.random()), done)
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
