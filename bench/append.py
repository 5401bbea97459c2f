"""Benchmark 2: single-event appends (EventStore.append) from 16 concurrent tasks, in-process.

Ceiling: raw single-row INSERT transactions into the same `events` table, through the same driver
(psycopg 3 async, one connection per task, autocommit). A third figure calls the store's own
`bank_append_batch(...)` function, one append per call, through raw psycopg: the gap between it and the store is SQLAlchemy's
async layer, the gap between it and the INSERTs is the store's design (lock, version check).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec
import psycopg

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import deposited
from bench.profiling import sampled
from bench.results import Figure, Outcome
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

NAME = "append"
TITLE = "2. append throughput in-process"
TASKS = 16
TARGET_RATIO = 0.7

Append = Callable[[str, int], Awaitable[None]]
"""Append one event to `stream` after `version`."""

_RAW_INSERT = (
    "INSERT INTO events (stream_id, version, event_id, type, payload, metadata, schema_version, "
    "recorded_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, clock_timestamp())"
)
_RAW_APPEND = "SELECT outcome FROM bank_append_batch(%s::jsonb)"


def _psycopg_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


async def _drive(append: Append, seconds: float, label: str) -> int:
    """TASKS tasks, each on its own stream, appending for `seconds`; returns appends done."""
    deadline = time.perf_counter() + seconds
    counts = [0] * TASKS

    async def task(n: int) -> None:
        stream = f"{label}-{n}-{uuid.uuid4().hex[:6]}"
        version = 0
        while time.perf_counter() < deadline:
            await append(stream, version)
            version += 1
            counts[n] += 1

    await asyncio.gather(*(task(n) for n in range(TASKS)))
    return sum(counts)


async def _store_rate(env: BenchEnv, seconds: float, profiles: list[str] | None) -> float:
    engine = create_async_store_engine(env.database_url, pool_size=TASKS)
    store = EventStore(engine)

    async def append(stream: str, version: int) -> None:
        await store.append(stream, [deposited()], version)

    try:
        await _drive(append, 0.5, "warm")
        with sampled(os.getpid(), "EventStore.append, 16 tasks", profiles):
            started = time.perf_counter()
            done = await _drive(append, seconds, "store")
            return done / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def _raw_rate(env: BenchEnv, seconds: float, statement: str) -> float:
    url = _psycopg_url(env.database_url)
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(TASKS)]
    free = list(conns)
    event = deposited()
    payload = msgspec.json.encode(event.payload).decode()
    batch_of = msgspec.json.Encoder()

    async def append(stream: str, version: int) -> None:
        conn = free.pop()
        try:
            if statement is _RAW_INSERT:
                params: tuple[object, ...] = (
                    stream, version + 1, uuid.uuid4(), event.type, payload, "{}", 1,
                )  # fmt: skip
            else:
                one = {"stream_id": stream, "event_id": str(uuid.uuid4()), "type": event.type,
                       "payload": event.payload, "metadata": {}, "schema_version": 1}  # fmt: skip
                appends = [{"expected": {stream: version}, "events": [one], "transfers": []}]
                params = (batch_of.encode(appends).decode(),)
            await conn.execute(statement, params)
        finally:
            free.append(conn)

    try:
        await _drive(append, 0.5, "warm-raw")
        started = time.perf_counter()
        done = await _drive(append, seconds, "raw")
        return done / (time.perf_counter() - started)
    finally:
        for conn in conns:
            await conn.close()


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    seconds = config.seconds(10, 3, 0.5)
    profiles: list[str] | None = [] if config.profile else None
    raw = asyncio.run(_raw_rate(env, seconds, _RAW_INSERT))
    raw_fn = asyncio.run(_raw_rate(env, seconds, _RAW_APPEND))
    store = asyncio.run(_store_rate(env, seconds, profiles))
    t = TITLE
    outcome = Outcome(
        figures=[
            Figure(t, "ceiling: raw INSERT transactions (psycopg async)", raw, "rows/s"),
            Figure(
                t,
                "bank_append_batch() of one append through raw psycopg",
                raw_fn,
                "appends/s",
                raw_fn / raw,
                "raw INSERT",
            ),
            Figure(
                t,
                "EventStore.append, 1 event",
                store,
                "appends/s",
                store / raw,
                "raw INSERT",
                f"≥ {TARGET_RATIO}",
                store / raw >= TARGET_RATIO,
            ),
            Figure(
                t,
                "EventStore.append, 1 event",
                store,
                "appends/s",
                store / raw_fn,
                "bank_append_batch() raw",
            ),
        ],
        notes=[f"{TITLE}: {TASKS} tasks, each appending to its own stream for {seconds:g} s."],
    )
    outcome.profiles.extend(profiles or [])
    return outcome
