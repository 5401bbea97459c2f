"""What reads of the past cost: `python -m bench.as_of [--quick]`.

1. Read cost against history length: one account's time indexes are filled directly in Redis (the
   layout's own members and scores, as the projectors write them) with 1 000 to 300 000 events,
   then `HistoryReader.balance_as_of` and `statement_between` (a page of 50) are timed at random
   instants, beside today's `ReadModelReader.balance` as the baseline. Flat medians across sizes
   are what O(log n) looks like; a linear read would grow 300-fold.
2. Projection cost: a store of deposits is caught up into fresh prefixes with the time indexes and,
   alternately, with their staging switched off; the ratio of events per second.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis

import projectors.balances
import projectors.statements
from bench.environment import BenchEnv, bench_environment
from bench.fill import fill_accounts
from kernel.read_model_layout import (
    BALANCES,
    FIRST_GENERATION,
    STATEMENTS,
    AccountBalance,
    ReadModelKeys,
    Running,
    StatementEntry,
    epoch_micros,
    history_member,
    statement_times_member,
)
from projectors.catch_up import run_catch_up
from read_side.history import HistoryReader
from read_side.readers import ReadModelReader
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(milliseconds=7)
_encode = msgspec.json.Encoder().encode


async def _fill(redis: Redis, keys: ReadModelKeys, account_id: str, events: int) -> None:
    balances = keys.generation(BALANCES, FIRST_GENERATION)
    statements = keys.generation(STATEMENTS, FIRST_GENERATION)
    last = AccountBalance("Owner", "EUR", events, "open", events, events, START.isoformat())
    await redis.hset(balances.account(account_id), mapping=last.to_hash())
    await redis.hset(statements.running(account_id), mapping=Running(events, events).to_hash())
    for first in range(1, events + 1, 5000):
        async with redis.pipeline(transaction=False) as pipe:
            history, times, entries = {}, {}, {}
            for version in range(first, min(first + 5000, events + 1)):
                at = START + STEP * version
                state = AccountBalance("Owner", "EUR", version, "open", version, version, "")
                history[history_member(state)] = epoch_micros(at)
                times[statement_times_member(version)] = epoch_micros(at)
                entry = StatementEntry(
                    version, "00000000-0000-0000-0000-000000000000", "MoneyDeposited", "0.01",
                    f"{version / 100:.2f}", at.isoformat(),
                )  # fmt: skip
                entries[_encode(entry)] = version
            pipe.zadd(balances.history(account_id), history)
            pipe.zadd(statements.statement_times(account_id), times)
            pipe.zadd(statements.statement(account_id), entries)
            await pipe.execute()


async def _median_us(calls: int, call: Callable[[], Awaitable[Any]]) -> float:
    for _ in range(50):  # warm up
        await call()
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1e6


async def _reads(
    reader: ReadModelReader, history: HistoryReader, account_id: str, size: int, calls: int
) -> tuple[float, float, float]:
    """Median µs of today's balance, a balance as of a random instant, a statement page between
    two random instants."""
    rng = random.Random(size)

    def instant() -> datetime:
        return START + STEP * rng.randint(1, size)

    async def balance() -> None:
        await reader.balance(account_id)

    async def balance_then() -> None:
        await history.balance_as_of(account_id, instant())

    async def statement() -> None:
        since = instant()
        await history.statement_between(account_id, 50, None, since, since + STEP * 500)

    return (
        await _median_us(calls, balance),
        await _median_us(calls, balance_then),
        await _median_us(calls, statement),
    )


async def read_cost(env: BenchEnv, sizes: list[int], calls: int) -> None:
    redis = Redis.from_url(env.redis_url, decode_responses=True)
    try:
        keys, history = ReadModelKeys(env.prefix), HistoryReader(redis, env.prefix)
        reader = ReadModelReader(redis, env.prefix)
        print(f"{'events':>8} {'balance':>9} {'as_of':>9} {'from/to':>9}  (median µs per read)")
        for size in sizes:
            account_id = f"big-{size}"
            await _fill(redis, keys, account_id, size)
            plain, as_of, between = await _reads(reader, history, account_id, size, calls)
            print(f"{size:>8} {plain:>9.0f} {as_of:>9.0f} {between:>9.0f}", flush=True)
    finally:
        await redis.aclose()


STAGING = (
    (projectors.balances, "stage_balance_history"),
    (projectors.statements, "stage_statement_times"),
)


@contextmanager
def _time_indexes_off() -> Iterator[None]:
    """The projections as they were before the time indexes (their staging does nothing)."""

    async def nothing(*_: object) -> None:
        return None

    saved = [getattr(module, name) for module, name in STAGING]
    for module, name in STAGING:
        setattr(module, name, nothing)
    try:
        yield
    finally:
        for (module, name), staging in zip(STAGING, saved, strict=True):
            setattr(module, name, staging)


async def projection_cost(env: BenchEnv, accounts: int, events: int, rounds: int) -> None:
    engine = create_async_store_engine(env.database_url, pool_size=8)
    try:
        fill = await fill_accounts(EventStore(engine), [f"a-{n}" for n in range(accounts)], events)
    finally:
        await engine.dispose()
    rates: dict[bool, list[float]] = {True: [], False: []}
    for n in range(rounds):
        for with_indexes in (True, False):
            prefix = f"{env.prefix}-r{n}-{int(with_indexes)}"
            settings = env.settings()
            settings = msgspec.structs.replace(
                settings, redis=msgspec.structs.replace(settings.redis, prefix=prefix)
            )
            started = time.perf_counter()
            if with_indexes:
                await run_catch_up(settings)
            else:
                with _time_indexes_off():
                    await run_catch_up(settings)
            rates[with_indexes].append(fill.events / (time.perf_counter() - started))
    with_, without = statistics.median(rates[True]), statistics.median(rates[False])
    print(
        f"catch-up of {fill.events} events (both projections), median of {rounds}: "
        f"{with_:.0f} events/s with the time indexes, {without:.0f} without "
        f"(ratio {with_ / without:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.as_of", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    with bench_environment() as env:
        sizes = [1_000, 30_000] if quick else [1_000, 30_000, 300_000]
        asyncio.run(read_cost(env, sizes, calls=300 if quick else 2000))
        accounts, events, rounds = (50, 40, 1) if quick else (200, 100, 7)
        asyncio.run(projection_cost(env, accounts, events, rounds))


if __name__ == "__main__":
    main()
