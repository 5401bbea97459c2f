"""`bank demo`: realistic random traffic through the real command path, for trying things out
and for benchmarks.

Each worker task owns a slice of the accounts and sends their commands one after another, so the
traffic is fast and never races itself; the commands still go through load → decide → append.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from kernel.settings import Settings
from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount, Withdraw
from write_side.domain.errors import InsufficientFunds
from write_side.publisher import EventPublisher, NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

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


async def _drive_slice(
    bus: CommandBus, account_ids: list[str], events: int, rng: random.Random, done: list[int]
) -> None:
    balances = dict.fromkeys(account_ids, Decimal(0))
    for account_id in account_ids:
        owner = f"{rng.choice(OWNERS)} {account_id[-4:]}"
        await bus.execute(OpenAccount(owner, rng.choice(CURRENCIES), account_id))
        done[0] += 1
    for _ in range(events - len(account_ids)):
        account_id = rng.choice(account_ids)
        amount = _random_amount(rng)
        if balances[account_id] >= amount and rng.random() < 0.4:
            try:
                await bus.execute(Withdraw(account_id, amount))
                balances[account_id] -= amount
            except InsufficientFunds:  # only if someone else spent it meanwhile
                pass
        else:
            await bus.execute(Deposit(account_id, amount))
            balances[account_id] += amount
        done[0] += 1


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
    bus = CommandBus(
        CachedAccounts(
            AccountRepository(
                EventStore(engine, settings.store.idempotency_retention),
                settings.store.snapshot_every,
            )
        ),
        publisher or NoPublisher(),
        settings.store.command_deadline_ms / 1000,
    )
    slices = [
        account_ids[i::concurrency] for i in range(concurrency) if account_ids[i::concurrency]
    ]
    shares = [max(len(s), round(events * len(s) / accounts)) for s in slices]
    done = [0]
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(_drive_slice(bus, s, share, random.Random(rng.random()), done))
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
