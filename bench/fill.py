"""Filling the event store fast: whole batches of events per `EventStore.append` call.

Bulk appends go through the real store (the PL/pgSQL function, its lock and its checks), only with
many events per round trip, so the rows are exactly what the command path would have written.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from bench.environment import BenchEnv
from bench.wrk import account_id as load_account_id
from kernel.events import (
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    NewEvent,
    TransferReceived,
    TransferSent,
)
from projectors.catch_up import run_catch_up
from write_side.demo import CURRENCIES as DEMO_CURRENCIES
from write_side.demo import TRANSFER_SHARE as DEMO_TRANSFER_SHARE
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

APPEND_BATCH = 1000
FILL_TASKS = 4
"""Appends serialise on the store's lock; a few tasks keep the next batch ready meanwhile."""


@dataclass(frozen=True, slots=True)
class FillReport:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def describe(self, what: str) -> str:
        return f"{what}: {self.events:,} events in {self.seconds:.1f} s ({self.rate:,.0f} events/s)"


def opened(account_id: str) -> NewEvent:
    return NewEvent.from_domain(AccountOpened(owner=f"Owner {account_id}", currency="USD"))


def deposited(cents: int = 100) -> NewEvent:
    return NewEvent.from_domain(MoneyDeposited(amount=Decimal(cents) / 100))


async def open_accounts(store: EventStore, account_ids: Sequence[str]) -> None:
    for account_id in account_ids:
        await store.append(account_id, [opened(account_id)], 0)


async def append_deposits(
    store: EventStore, account_id: str, count: int, after_version: int
) -> int:
    """Append `count` deposits of 1.00 after `after_version`; returns the new version."""
    version = after_version
    while count > 0:
        size = min(count, APPEND_BATCH)
        await store.append(account_id, [deposited() for _ in range(size)], version)
        version += size
        count -= size
    return version


async def fill_accounts(
    store: EventStore, account_ids: Sequence[str], events_per_account: int
) -> FillReport:
    """Open each account and give it `events_per_account` events in all (the opening included)."""
    started = time.perf_counter()
    queue = list(account_ids)

    async def worker() -> None:
        while queue:
            account_id = queue.pop()
            await store.append(account_id, [opened(account_id)], 0)
            await append_deposits(store, account_id, events_per_account - 1, 1)

    await asyncio.gather(*(worker() for _ in range(FILL_TASKS)))
    return FillReport(len(account_ids) * events_per_account, time.perf_counter() - started)


async def open_load_accounts(env: BenchEnv, count: int, *, project: bool) -> None:
    """Open the accounts the HTTP load scripts address (`account_id(0..count-1)`); with
    `project`, also catch the read models up so the query API can serve them."""
    engine = create_async_store_engine(env.database_url, pool_size=2)
    try:
        await open_accounts(EventStore(engine), [load_account_id(n) for n in range(count)])
    finally:
        await engine.dispose()
    if project:
        await run_catch_up(env.settings(), wait_for_locks=True)


DEMO_TASKS = 64
"""Concurrent single-command appends: the store's group commit (append_batch.py) gathers them."""


async def fill_like_demo(
    store: EventStore, accounts: int, events: int, *, seed: int = 1
) -> FillReport:
    """What `bank demo` leaves in the store, without its command path: `accounts` accounts opened
    (owners, a mix of currencies), then deposits, withdrawals and transfers (two events, one per
    side, in one store transaction) spread at random over the accounts, one command per append,
    until `events` events in all. Each task owns a slice of the accounts, so it knows their
    versions and the appends never conflict."""
    started = time.perf_counter()
    rng = random.Random(seed)
    ids = [f"demo-{n:07d}" for n in range(accounts)]
    slices = [ids[i::DEMO_TASKS] for i in range(DEMO_TASKS) if ids[i::DEMO_TASKS]]
    shares = [events * len(part) // accounts for part in slices]
    seeds = [rng.random() for _ in slices]
    await asyncio.gather(
        *(
            _demo_slice(store, p, n, random.Random(s))
            for p, n, s in zip(slices, shares, seeds, strict=True)
        )
    )
    return FillReport(sum(shares), time.perf_counter() - started)


async def _demo_slice(
    store: EventStore, account_ids: list[str], events: int, rng: random.Random
) -> None:
    versions = dict.fromkeys(account_ids, 0)
    balances = dict.fromkeys(account_ids, Decimal(0))  # spent only when there (as the demo does)
    for account_id in account_ids:
        currency = rng.choice(DEMO_CURRENCIES)
        opening = AccountOpened(owner=f"Owner {account_id[-4:]}", currency=currency)
        await store.append(account_id, [NewEvent.from_domain(opening)], 0)
        versions[account_id] = 1
    written = len(account_ids)
    while written < events:
        amount = Decimal(rng.randint(1, 50_000)) / 100
        source, target = rng.sample(account_ids, 2) if len(account_ids) > 1 else (None, None)
        roll = rng.random()
        if source and target and roll < DEMO_TRANSFER_SHARE and balances[source] >= amount:
            transfer_id = uuid.uuid4().hex
            sent = TransferSent(transfer_id, target, amount)
            received = TransferReceived(transfer_id, source, amount)
            new = [(source, NewEvent.from_domain(sent)), (target, NewEvent.from_domain(received))]
            await store.append_many(new, {source: versions[source], target: versions[target]})
            for account_id, sign in ((source, -1), (target, 1)):
                versions[account_id] += 1
                balances[account_id] += sign * amount
            written += 2
            continue
        account_id = rng.choice(account_ids)
        withdrawn = balances[account_id] >= amount and roll < 0.6
        moved = MoneyWithdrawn(amount) if withdrawn else MoneyDeposited(amount)
        await store.append(account_id, [NewEvent.from_domain(moved)], versions[account_id])
        versions[account_id] += 1
        balances[account_id] += -amount if withdrawn else amount
        written += 1
