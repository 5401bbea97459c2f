"""Benchmark 3: AccountRepository.load of an account with 100,000 events vs one with 10.

The long stream is written with bulk appends. First it is loaded with no snapshot row (what
SNAPSHOT_EVERY=huge gives: every event replayed); then the snapshot the repository's rule would have
taken at version 100,000 is saved through EventStore.save_snapshot (a tail of 0 events); then 99
more events are appended (the worst case under the rule: snapshot + 99). Each time is the median.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from datetime import UTC, datetime

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import append_deposits, fill_accounts
from bench.profiling import sampled
from bench.results import Figure, Outcome
from write_side.domain.account import SNAPSHOT_SCHEMA_VERSION
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.records import Snapshot

NAME = "aggregate_load"
TITLE = "3. aggregate load with snapshots"
SHORT, LONG = "short-10", "long-100k"
TARGET_RATIO = 1.5
SNAPSHOT_EVERY = 100


async def _median_load_s(repository: AccountRepository, account_id: str, budget_s: float) -> float:
    """Median time of repeated loads within `budget_s` (at least 3 loads)."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 500):
        started = time.perf_counter()
        await repository.load(account_id)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def _measure(env: BenchEnv, config: BenchConfig, outcome: Outcome) -> None:
    long_events = config.count(100_000, 100_000, 2_000)
    budget = config.seconds(3, 1, 0.2)
    engine = create_async_store_engine(env.database_url, pool_size=4)
    store = EventStore(engine)
    repository = AccountRepository(store, SNAPSHOT_EVERY)
    profiles: list[str] | None = [] if config.profile else None
    try:
        fill = await fill_accounts(store, [LONG], long_events)
        await fill_accounts(store, [SHORT], 10)
        outcome.notes.append(fill.describe(f"{TITLE}: long stream filled with bulk appends"))
        short = await _median_load_s(repository, SHORT, budget)
        with sampled(os.getpid(), "load of 100,000 events, no snapshot", profiles):
            no_snapshot = await _median_load_s(repository, LONG, budget)
        account = (await repository.load(LONG)).account
        state = account.snapshot_state()
        taken = datetime.now(UTC)
        snapshot = Snapshot(LONG, long_events, state, SNAPSHOT_SCHEMA_VERSION, taken)
        await store.save_snapshot(snapshot)
        at_snapshot = await _median_load_s(repository, LONG, budget)
        await append_deposits(store, LONG, SNAPSHOT_EVERY - 1, long_events)
        worst = await _median_load_s(repository, LONG, budget)
    finally:
        await engine.dispose()
    t = TITLE
    ms = 1000.0
    outcome.figures += [
        Figure(t, "load, 10 events (baseline)", short * ms, "ms"),
        Figure(
            t, "load, 100k events, snapshot + 99-event tail (worst case)", worst * ms, "ms",
            worst / short, "10-event load", f"≤ {TARGET_RATIO}", worst / short <= TARGET_RATIO,
        ),
        Figure(t, "load, 100k events, snapshot + 0-event tail", at_snapshot * ms, "ms", at_snapshot / short, "10-event load"),
        Figure(t, "load, 100k events, snapshots off", no_snapshot * ms, "ms", no_snapshot / short, "10-event load"),
    ]  # fmt: skip
    outcome.profiles.extend(profiles or [])


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    outcome = Outcome()
    asyncio.run(_measure(env, config, outcome))
    return outcome
