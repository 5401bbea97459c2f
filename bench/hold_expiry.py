"""Benchmark 10: holds expire on time while the worker runs: from a hold's `expires_at` to the
`recorded_at` of the HoldExpired the worker's expiry loop appends (projectors/hold_expiry.py).

`bank write-api` and `bank worker` run as their own processes on one database, Redis prefix and RQ
queue. Each hold has its own two accounts (opened and funded through the store beforehand, then
projected), so no two holds share a stream. The suite's process places the holds over HTTP at an
even pace over a few seconds, each with a deadline 1 or 2 s ahead (the API takes whole seconds),
so deadlines keep falling while holds are still being placed and projected. Once every hold has
expired (or a timeout passes), the delays are read from the store: the "from" side's HoldExpired
`recorded_at` minus the `expires_at` of its HoldPlaced. The delay includes the projection of the
hold into the due set, the loop's pause (`EXPIRY_INTERVAL_S`) and the expiry's append.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import psycopg

from bench import serving
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import deposited, opened
from bench.lag import percentile
from bench.results import Figure, Outcome
from bench.servers import free_port, running
from projectors.catch_up import run_catch_up
from projectors.hold_expiry import EXPIRY_INTERVAL_S
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

NAME = "hold_expiry"
TITLE = "10. hold expiry delay"
TARGET_P99_S = 1.0
DEADLINES_S = (1, 2)
EXPIRED_TIMEOUT_S = 30.0
"""How long after the last deadline the benchmark waits for every expiry before it reports."""

DELAYS_SQL = """
SELECT placed.payload->>'expires_at', expired.recorded_at, expired.metadata->>'command'
FROM events AS expired
JOIN events AS placed
  ON placed.stream_id = expired.stream_id
 AND placed.type = 'HoldPlaced'
 AND placed.payload->>'hold_id' = expired.payload->>'hold_id'
WHERE expired.type = 'HoldExpired' AND expired.payload->>'side' = 'from'
"""


def payer(n: int) -> str:
    return f"hx-payer-{n:04d}"


def payee(n: int) -> str:
    return f"hx-payee-{n:04d}"


@dataclass(slots=True)
class Placed:
    ok: int = 0
    failed: int = 0
    last_deadline: float = 0.0
    """time.time() of the latest deadline answered."""


async def _open_accounts(env: BenchEnv, holds: int) -> None:
    """Two accounts per hold, the payer with 1.00 (each hold reserves 1.00), then projected."""
    engine = create_async_store_engine(env.database_url, pool_size=2)
    try:
        store = EventStore(engine)
        for n in range(holds):
            await store.append(payer(n), [opened(payer(n)), deposited(100)], 0)
            await store.append(payee(n), [opened(payee(n))], 0)
    finally:
        await engine.dispose()
    await run_catch_up(env.settings(), wait_for_locks=True)


async def _place(session: aiohttp.ClientSession, write: str, n: int, out: Placed) -> None:
    body = {
        "hold_id": f"hx-{n:04d}",
        "from_account": payer(n),
        "to_account": payee(n),
        "amount": "1.00",
        "expires_in_s": DEADLINES_S[n % len(DEADLINES_S)],
    }
    async with session.post(f"{write}/holds", json=body) as response:
        if response.status != 201:
            out.failed += 1
            return
        expires_at = datetime.fromisoformat((await response.json())["expires_at"])
    out.ok += 1
    out.last_deadline = max(out.last_deadline, expires_at.timestamp())


async def _place_evenly(write: str, holds: int, spread_s: float) -> Placed:
    """Start the placements at an even pace over `spread_s` (deadlines shuffled 1 s / 2 s)."""
    out = Placed()
    order = list(range(holds))
    random.Random(10).shuffle(order)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        started = time.perf_counter()
        tasks = []
        for i, n in enumerate(order):
            await asyncio.sleep(max(0.0, started + i * spread_s / holds - time.perf_counter()))
            tasks.append(asyncio.create_task(_place(session, write, n, out)))
        await asyncio.gather(*tasks)
    return out


def _expiries(database_url: str) -> list[tuple[float, str]]:
    """(delay in s from the deadline to the recorded expiry, metadata command) per expired hold."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(DELAYS_SQL).fetchall()
    return [
        ((recorded_at - datetime.fromisoformat(expires_at)).total_seconds(), str(command))
        for expires_at, recorded_at, command in rows
    ]


def _wait_all_expired(database_url: str, holds: int, last_deadline: float) -> None:
    while time.time() < last_deadline + EXPIRED_TIMEOUT_S:
        if len(_expiries(database_url)) >= holds:
            return
        time.sleep(0.2)


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    holds = config.count(200, 200, 10)
    spread_s = config.seconds(4, 3, 0.5)
    asyncio.run(_open_accounts(env, holds))
    process_env = env.process_env()
    write_port = free_port()
    with (
        running("worker", serving.bank("worker"), env=process_env, health_path=None),
        running("write API", serving.bank("write-api", write_port, config.workers), env=process_env, port=write_port) as write,
    ):  # fmt: skip
        placed = asyncio.run(_place_evenly(write.url, holds, spread_s))
        _wait_all_expired(env.database_url, placed.ok, placed.last_deadline)
    expiries = _expiries(env.database_url)
    delays = [delay for delay, _ in expiries]
    if not delays:
        raise RuntimeError(f"no hold expired within {EXPIRED_TIMEOUT_S:g} s of its deadline")
    by_others = sum(1 for _, command in expiries if command != "ExpireHold")
    p50, p99, worst = percentile(delays, 50), percentile(delays, 99), max(delays)
    versus = f"the loop's pause ({EXPIRY_INTERVAL_S:g} s)"
    target = f"≤ {TARGET_P99_S:g} s"
    t = TITLE
    return Outcome(
        figures=[
            Figure(
                t,
                "delay p50 (expires_at → HoldExpired recorded)",
                p50,
                "s",
                p50 / EXPIRY_INTERVAL_S,
                versus,
            ),
            Figure(
                t,
                "delay p99",
                p99,
                "s",
                p99 / EXPIRY_INTERVAL_S,
                versus,
                target,
                p99 <= TARGET_P99_S,
            ),
            Figure(t, "delay max", worst, "s", worst / EXPIRY_INTERVAL_S, versus),
        ],
        notes=[
            f"{TITLE}: {placed.ok} holds placed ({placed.failed} refused) over {spread_s:g} s, "
            f"deadlines {' or '.join(f'{d} s' for d in DEADLINES_S)} ahead; {len(delays)} expired "
            f"({placed.ok - len(delays)} not within {EXPIRED_TIMEOUT_S:g} s of the last deadline, "
            f"{by_others} by another command than ExpireHold).",
        ],
    )
