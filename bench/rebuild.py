"""Benchmark 4: replaying the whole store into fresh read models (projectors/rebuild.py).

The store is filled with bulk appends (1,000 accounts; 1,000,000 events, quick 50,000), then each
projection is rebuilt from position 0. Ceiling: the same number of statement entries written to
Redis from Python with pipelining (1,000 commands per round trip, no reading, no folding), which is
what a rebuild could at best do with Redis alone. `bank demo`'s speed is measured for comparison
with the bulk fill (the brief's "or bank demo if fast enough").
"""

from __future__ import annotations

import asyncio
import os
import time

from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import fill_accounts
from bench.profiling import sampled
from bench.results import Figure, Outcome
from kernel.read_model_layout import StatementEntry
from projectors.catch_up import PROJECTIONS, open_context
from projectors.rebuild import rebuild_projection
from write_side.demo import run_demo
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

NAME = "rebuild"
TITLE = "4. projection rebuild"
TARGET_RATE = 50_000.0
PIPELINE = 1000
ACCOUNTS = 1000


async def _fill(env: BenchEnv, events: int, outcome: Outcome) -> None:
    engine = create_async_store_engine(env.database_url, pool_size=4)
    try:
        accounts = min(ACCOUNTS, max(1, events // 10))
        ids = [f"acct-{n:04d}" for n in range(accounts)]
        report = await fill_accounts(EventStore(engine), ids, events // accounts)
        outcome.notes.append(report.describe(f"{TITLE}: store filled with bulk appends"))
    finally:
        await engine.dispose()


async def _redis_ceiling(env: BenchEnv, entries: int) -> float:
    """Entries/s for `entries` pipelined ZADDs of statement-sized members over 1,000 keys."""
    redis = Redis.from_url(env.redis_url)
    entry = StatementEntry(1, "5a4c1f6e-3f1b-4a53-9f0e-2b8e0c6b7d11", "MoneyDeposited",
                           "1.00", "1.00", "2026-11-27T13:00:00+00:00")  # fmt: skip
    try:
        started = time.perf_counter()
        for first in range(0, entries, PIPELINE):
            async with redis.pipeline(transaction=False) as pipe:
                for n in range(first, min(entries, first + PIPELINE)):
                    member = f"{n}:{entry.event_id}:{entry.amount}:{entry.recorded_at}"
                    pipe.zadd(f"{env.prefix}:ceiling:{{acct-{n % ACCOUNTS:04d}}}", {member: n})
                await pipe.execute()
        return entries / (time.perf_counter() - started)
    finally:
        await redis.aclose()


async def _rebuild_rates(
    env: BenchEnv, outcome: Outcome, profiles: list[str] | None
) -> dict[str, float]:
    rates: dict[str, float] = {}
    async with open_context(env.settings()) as ctx:
        for projection in PROJECTIONS:
            with sampled(os.getpid(), f"rebuild of {projection.name}", profiles):
                started = time.perf_counter()
                result = await rebuild_projection(ctx, projection)
                seconds = time.perf_counter() - started
            rates[projection.name] = result.events / seconds
            outcome.notes.append(
                f"{TITLE}: {projection.name}: {result.events:,} events in {seconds:.1f} s "
                f"(generation {result.old_generation} -> {result.new_generation})"
            )
    return rates


async def _demo_rate(env: BenchEnv, events: int) -> float:
    report = await run_demo(env.settings(), accounts=100, events=events, concurrency=8, seed=1)
    return report.events / report.seconds


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    events = config.count(1_000_000, 50_000, 2_000)
    outcome = Outcome()
    profiles: list[str] | None = [] if config.profile else None
    asyncio.run(_fill(env, events, outcome))
    rates = asyncio.run(_rebuild_rates(env, outcome, profiles))
    ceiling = asyncio.run(_redis_ceiling(env, events))
    demo = asyncio.run(_demo_rate(env, config.count(5_000, 2_000, 200)))
    t = TITLE
    outcome.figures.append(
        Figure(t, "ceiling: pipelined Redis writes from Python", ceiling, "entries/s")
    )
    for name, rate in rates.items():
        outcome.figures.append(
            Figure(
                t,
                f"rebuild of {name}",
                rate,
                "events/s",
                rate / ceiling,
                "Redis ceiling",
                f"≥ {TARGET_RATE:,.0f}/s",
                rate >= TARGET_RATE,
            )
        )
    outcome.notes.append(
        f"{TITLE}: `bank demo` (the command path, 8 tasks) filled at {demo:,.0f} events/s."
    )
    outcome.profiles.extend(profiles or [])
    return outcome
