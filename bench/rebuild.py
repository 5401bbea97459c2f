"""Benchmark 4: `bank projections rebuild --all`, as users run it, on a store shaped like `bank demo`'s.

The store is filled with what `bank demo` writes (2,000 accounts; deposits, withdrawals and
two-sided transfers at random over them, one command per store transaction; 1,000,000 events,
quick 100,000) through concurrent single-command appends (bench/fill.py), a lot faster than the
command path. A first `rebuild --all` gives the live read models everything (as a caught-up worker
would have); the measured one then rebuilds both projections beside them and switches, through the
CLI in its own process: its events/s over the whole run (start-up, replay, switch, deleting the old
generations) and its peak RSS. Ceiling: the same number of statement entries written to Redis from
Python with pipelining (1,000 commands per round trip, no reading, no folding).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import fill_like_demo
from bench.profiling import sampled
from bench.rebuild_contention import RATE as DEPOSIT_RATE
from bench.rebuild_contention import steady_deposits
from bench.results import Figure, Outcome
from kernel.read_model_layout import StatementEntry
from write_side.demo import run_demo
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

NAME = "rebuild"
TITLE = "4. projection rebuild"
TARGET_RATE = 50_000.0
"""1,000,000 events in 20 s, every projection together."""
TARGET_RSS_MIB = 300.0
TARGET_UNDER_LOAD = 1.5
"""The rebuild's time under load over its idle time."""
PIPELINE = 1000
ACCOUNTS = 2000


async def _fill(env: BenchEnv, events: int, outcome: Outcome) -> int:
    engine = create_async_store_engine(env.database_url, pool_size=8)
    try:
        store = EventStore(engine)
        report = await fill_like_demo(store, min(ACCOUNTS, max(2, events // 20)), events)
        outcome.notes.append(report.describe(f"{TITLE}: store filled like `bank demo`"))
        return await store.head_position()
    finally:
        await engine.dispose()


def _rebuild_all(env: BenchEnv, label: str, profiles: list[str] | None) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one `bank projections rebuild --all` process."""
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as folder:
        log = Path(folder) / "rebuild.log"
        with log.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "projections", "rebuild", "--all"],
                env=env.process_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            with sampled(process.pid, label, profiles):
                _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"rebuild --all failed: {log.read_text()}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


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


async def _demo_rate(env: BenchEnv, events: int) -> float:
    report = await run_demo(env.settings(), accounts=100, events=events, concurrency=8, seed=1)
    return report.events / report.seconds


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    events = config.count(1_000_000, 100_000, 2_000)
    outcome = Outcome()
    profiles: list[str] | None = [] if config.profile else None
    head = asyncio.run(_fill(env, events, outcome))
    first, _ = _rebuild_all(env, "", None)
    outcome.notes.append(
        f"{TITLE}: the first rebuild --all (the live read models were empty) took {first:.1f} s"
    )
    seconds, rss = _rebuild_all(env, "bank projections rebuild --all", profiles)
    rate = head / seconds
    with steady_deposits(env):
        loaded, loaded_rss = _rebuild_all(env, "", None)
    outcome.notes.append(
        f"{TITLE}: bank projections rebuild --all of {head:,} events: {seconds:.1f} s idle "
        f"(peak RSS {rss:,.0f} MiB), {loaded:.1f} s while ~{DEPOSIT_RATE:.0f} deposits/s went "
        f"through a write API and worker to the same store (peak RSS {loaded_rss:,.0f} MiB)"
    )
    ceiling = asyncio.run(_redis_ceiling(env, head))
    demo = asyncio.run(_demo_rate(env, config.count(5_000, 2_000, 200)))
    t = TITLE
    outcome.figures += [
        Figure(t, "ceiling: pipelined Redis writes from Python", ceiling, "entries/s"),
        Figure(
            t,
            "`bank projections rebuild --all` (every projection, one pass)",
            rate,
            "events/s",
            rate / ceiling,
            "Redis ceiling",
            f"≥ {TARGET_RATE:,.0f}/s",
            rate >= TARGET_RATE,
        ),
        Figure(
            t,
            f"rebuild --all while ~{DEPOSIT_RATE:.0f} deposits/s are written",
            loaded,
            "s",
            loaded / seconds,
            "the idle rebuild",
            f"≤ {TARGET_UNDER_LOAD:.1f}x",
            loaded / seconds <= TARGET_UNDER_LOAD,
        ),
        Figure(
            t,
            "peak RSS of the rebuild process",
            rss,
            "MiB",
            target=f"< {TARGET_RSS_MIB:,.0f} MiB",
            met=rss < TARGET_RSS_MIB,
        ),
    ]
    outcome.notes.append(
        f"{TITLE}: `bank demo` (the command path, 8 tasks) filled at {demo:,.0f} events/s."
    )
    outcome.profiles.extend(profiles or [])
    return outcome
