"""Benchmark 5: projection lag under sustained load: from a command's response to its position being
readable on the query API (GET /accounts/{id}/balance?min_position=P).

Write API, query API and `bank worker` run as their own processes on one database, Redis prefix and
RQ queue. An open-loop client (aiohttp, in the suite's process, which is otherwise idle) starts
deposits at a fixed rate; as each answers, it asks the query API for that account's balance at the
returned position and times the gap. The gap includes one query round trip, so the same round trip
on an idle, caught-up system is reported beside it. The same servers are loaded at each offered
rate in turn (`LOADS`, lightest first), each with its own figures and target.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from bench import serving
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import open_load_accounts
from bench.profiling import sampled
from bench.results import Figure, Outcome
from bench.servers import free_port, running
from bench.wrk import account_id

NAME = "lag"
TITLE = "5. projection lag"
ACCOUNTS = 1000
MAX_IN_FLIGHT = 256
WAIT_MS = 5000
CAUGHT_UP_TIMEOUT_S = 30.0
SETTLE_S = 1.0
"""Pause between two loads, so the next one starts on an idle system."""


@dataclass(frozen=True, slots=True)
class Load:
    rate: int
    """Commands offered per second."""
    target_p99_ms: float


LOADS = (Load(300, 50.0), Load(1000, 100.0))


@dataclass(slots=True)
class LagSamples:
    lags_ms: list[float] = field(default_factory=list)
    commands_ok: int = 0
    commands_failed: int = 0
    reads_failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    last_answered_at: float = 0.0
    """When the last command was answered: the end of the span `commands/s achieved` is over (the
    lag reads that follow it are not command throughput)."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _deposit_then_read(
    session: aiohttp.ClientSession, write: str, query: str, gate: asyncio.Semaphore, out: LagSamples
) -> None:
    account = account_id(random.randrange(ACCOUNTS))
    async with gate:
        async with session.post(
            f"{write}/accounts/{account}/deposit", json={"amount": "1.00"}
        ) as r:
            if r.status != 200:
                out.commands_failed += 1
                out.failures[f"POST {r.status} {(await r.text())[:40]}"] += 1
                return
            position = (await r.json())["position"]
        answered = time.perf_counter()
        out.commands_ok += 1
        out.last_answered_at = max(out.last_answered_at, answered)
        params = {"min_position": str(position), "wait_ms": str(WAIT_MS)}
        async with session.get(f"{query}/accounts/{account}/balance", params=params) as r:
            body = await r.read()
            if r.status != 200:
                out.reads_failed += 1
                out.failures[f"GET {r.status} {body[:40]!r}"] += 1
                return
        out.lags_ms.append((time.perf_counter() - answered) * 1000)


async def _open_loop(
    write: str, query: str, rate: float, seconds: float
) -> tuple[LagSamples, float]:
    out = LagSamples()
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT * 2)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        total = round(rate * seconds)
        while len(tasks) < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            while len(tasks) < due:
                tasks.append(
                    asyncio.create_task(_deposit_then_read(session, write, query, gate, out))
                )
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks, return_exceptions=True)
    return out, started


async def _idle_round_trip_ms(query: str, samples: int) -> float:
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        for n in range(samples):
            started = time.perf_counter()
            url = f"{query}/accounts/{account_id(n % ACCOUNTS)}/balance"
            async with session.get(url, params={"min_position": "1"}) as r:
                await r.read()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _wait_caught_up(query: str) -> None:
    deadline = time.monotonic() + CAUGHT_UP_TIMEOUT_S
    url = f"{query}/accounts/{account_id(ACCOUNTS - 1)}/balance"
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(url) as r:
                if r.status == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the projections did not catch up with the opened accounts in time")


def _offered(rate: int) -> str:
    return f"{rate:,}/s offered"


def _figures(
    load: Load, rate: int, samples: LagSamples, started: float, idle_ms: float
) -> list[Figure]:
    """One row for the throughput reached, and one per percentile, each naming the offered rate."""
    achieved = samples.commands_ok / max(1e-9, samples.last_answered_at - started)
    p50, p99 = percentile(samples.lags_ms, 50), percentile(samples.lags_ms, 99)
    worst = max(samples.lags_ms, default=float("nan"))
    at = _offered(rate)
    return [
        Figure(TITLE, f"commands/s achieved at {at}", achieved, "cmd/s", achieved / rate, "offered rate"),
        Figure(TITLE, f"lag p50 at {at}", p50, "ms", p50 / idle_ms, "idle query round trip"),
        Figure(TITLE, f"lag p99 at {at}", p99, "ms", p99 / idle_ms, "idle query round trip", f"≤ {load.target_p99_ms:g} ms", p99 <= load.target_p99_ms),
        Figure(TITLE, f"lag max at {at}", worst, "ms", worst / idle_ms, "idle query round trip"),
    ]  # fmt: skip


def _note(rate: int, seconds: float, samples: LagSamples) -> list[str]:
    return [
        f"{TITLE} at {_offered(rate)}: {samples.commands_ok:,} deposits answered "
        f"({samples.commands_failed} failed, {samples.reads_failed} reads failed) "
        f"over {seconds:g} s.",
        *(
            f"{TITLE} at {_offered(rate)}: failure {what}: {n}"
            for what, n in samples.failures.most_common(3)
        ),
    ]


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    asyncio.run(open_load_accounts(env, ACCOUNTS, project=True))
    seconds = config.seconds(10, 3, 1)
    profiles: list[str] | None = [] if config.profile else None
    process_env = env.process_env()
    write_port, query_port = free_port(), free_port()
    measured: list[tuple[Load, int, LagSamples, float]] = []
    with (
        running("worker", serving.bank("worker"), env=process_env, health_path=None) as worker,
        running("write API", serving.bank("write-api", write_port, config.workers), env=process_env, port=write_port) as write,
        running("query API", serving.bank("query-api", query_port, config.workers), env=process_env, port=query_port) as query,
    ):  # fmt: skip
        asyncio.run(_wait_caught_up(query.url))
        for load in LOADS:
            rate = config.count(load.rate, load.rate, max(1, load.rate // 10))
            at = _offered(rate)
            with (
                sampled(worker.process.pid, f"projection worker at {at}", profiles),
                sampled(write.process.pid, f"write API at {at}", profiles),
                sampled(query.process.pid, f"query API at {at}", profiles),
            ):
                samples, started = asyncio.run(_open_loop(write.url, query.url, rate, seconds))
            measured.append((load, rate, samples, started))
            time.sleep(SETTLE_S)
        idle_ms = asyncio.run(_idle_round_trip_ms(query.url, config.count(300, 100, 20)))
    outcome = Outcome()
    for load, rate, samples, started in measured:
        outcome.figures += _figures(load, rate, samples, started, idle_ms)
        outcome.notes += _note(rate, seconds, samples)
    outcome.notes.append(f"{TITLE}: idle query round trip median {idle_ms:.2f} ms.")
    outcome.profiles.extend(profiles or [])
    return outcome
