"""How much a steady write load on the same projections slows a rebuild (issue 9, item 1).

`python -m bench.rebuild_contention [EVENTS]` fills a store like `bank demo` (bench/fill.py) and
rebuilds every projection once to give the live read models everything, then rebuilds them all
(one pass, projectors/one_pass.py) three times: idle; while ~100 deposits/s (real write API and
worker) go to *another* store and prefix on this machine; and while the same load goes to this
store, whose live runners must hand over their locks. The third over the second is the cost of
sharing the projections rather than the machine; the runner-lock wait is what the handover
(projectors/handover.py) keeps short. Prints one line each. Benchmark 4 (bench/rebuild.py) measures
the third against the first through the CLI.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx

from bench.environment import BenchEnv, bench_environment
from bench.fill import fill_like_demo
from bench.servers import free_port
from projectors.catch_up import PROJECTIONS, open_context
from projectors.rebuild import RebuildResult, rebuild_projections
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

RATE = 100.0
"""Deposits per second of the load."""


ACCOUNTS = 2000


async def _fill(env: BenchEnv, events: int) -> None:
    engine = create_async_store_engine(env.database_url, pool_size=8)
    try:
        await fill_like_demo(EventStore(engine), min(ACCOUNTS, max(2, events // 20)), events)
    finally:
        await engine.dispose()
    await _rebuild(env)


async def _rebuild(env: BenchEnv) -> tuple[float, list[RebuildResult]]:
    async with open_context(env.settings()) as ctx:
        started = time.perf_counter()
        results = await rebuild_projections(ctx, PROJECTIONS)
        return time.perf_counter() - started, results


def _deposits(url: str, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        client.post("/accounts", json={"owner": "load", "account_id": "load-1"})
        next_at = time.monotonic()
        while not stop.is_set():
            client.post("/accounts/load-1/deposit", json={"amount": "1.00"})
            next_at += 1 / RATE
            time.sleep(max(0.0, next_at - time.monotonic()))  # pacing the load


@contextmanager
def steady_deposits(env: BenchEnv) -> Iterator[None]:
    """A write API and a worker for `env`, and ~RATE deposits/s through them."""
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="rebuild-contention-"))
    bank = [sys.executable, "-m", "app.cli"]
    processes = [
        subprocess.Popen(
            [*bank, *args],
            env=env.process_env(),
            stdout=(logs / f"{args[0]}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for args in (["write-api", "--port", str(port)], ["worker"])
    ]
    url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        load = threading.Thread(target=_deposits, args=(url, stop))
        load.start()
        time.sleep(2)  # let the load settle before measuring
        try:
            yield
        finally:
            stop.set()
            load.join()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def main(events: int) -> None:
    with bench_environment() as target, bench_environment() as elsewhere:
        asyncio.run(_fill(target, events))
        for label, load in (
            ("idle", nullcontext()),
            ("load elsewhere", steady_deposits(elsewhere)),
            ("load on the same projections", steady_deposits(target)),
        ):
            with load:
                seconds, results = asyncio.run(_rebuild(target))
            waited = max(result.runner_wait_s for result in results)
            print(
                f"{label:29} {results[0].events:>9,} events  {seconds:6.2f} s  "
                f"longest runner-lock wait {waited * 1000:7.1f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
