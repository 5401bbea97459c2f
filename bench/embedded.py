"""Benchmark 11: the embedded default. Deposits over HTTP on a SQLite file, served as `bank up` serves
it, against the same load on PostgreSQL in the same run.

`bank up` runs `bank write-api` (one worker process) and `bank worker` beside it on the file; so
does this benchmark, on both backends: the worker reads the store while it is written (on SQLite
that is a second process on the same file, which is part of what the embedded default costs), and
its catch-up jobs are what the write API's nudges ask for. The query API is left out: it reads
only Redis, never the store. Auth is off, as in the other HTTP benchmarks, and the master key is
set, as `bank up` sets it. Deposits go to 1,000 accounts at random from 32 connections (wrk).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import serving
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import open_load_accounts
from bench.http_load import ACCOUNTS
from bench.profiling import sampled
from bench.results import Figure, Outcome
from bench.servers import free_port, running
from bench.wrk import LoadResult, run_wrk
from write_side.store.migrate import upgrade_to_head

NAME = "embedded"
TITLE = "11. embedded default (SQLite) over HTTP"
TARGET_RATE = 1000.0
TARGET_RATIO = 0.5


@contextmanager
def _sqlite_env(env: BenchEnv) -> Iterator[BenchEnv]:
    """A migrated SQLite file in a scratch folder, with Redis keys under the run's prefix (so the
    suite's cleanup removes them) but apart from the PostgreSQL half's."""
    folder = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    try:
        url = f"sqlite:///{folder / 'bank.db'}"
        upgrade_to_head(url)
        yield dataclasses.replace(env, database_url=url, prefix=f"{env.prefix}-sqlite")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _serve_and_load(
    env: BenchEnv, label: str, config: BenchConfig, profiles: list[str] | None
) -> LoadResult:
    """`bank write-api` and `bank worker` on `env`'s store, warmed up, then loaded with wrk."""
    asyncio.run(open_load_accounts(env, ACCOUNTS, project=False))
    process_env = dict(env.process_env(), BANK_MASTER_KEY=base64.b64encode(os.urandom(32)).decode())
    port = free_port()
    with ExitStack() as stack:
        stack.enter_context(
            running(f"worker ({label})", serving.bank("worker"), env=process_env, health_path=None)
        )
        server = stack.enter_context(
            running(
                f"write API ({label})",
                serving.bank("write-api", port, config.workers),
                env=process_env,
                port=port,
            )
        )
        if not config.smoke:
            run_wrk(server.url, "deposits", config.seconds(2, 1), ACCOUNTS)  # warm-up
        with sampled(server.process.pid, f"write API on {label}", profiles, subprocesses=True):
            return run_wrk(server.url, "deposits", config.seconds(10, 3, 1), ACCOUNTS)


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    profiles: list[str] | None = [] if config.profile else None
    with _sqlite_env(env) as embedded:
        sqlite = _serve_and_load(embedded, "SQLite", config, profiles)
    postgres = _serve_and_load(env, "PostgreSQL", config, profiles)
    ratio = sqlite.rate / postgres.rate if postgres.rate else 0.0
    t = TITLE
    figures = [
        Figure(t, "deposits/s on PostgreSQL (2xx), write API + worker", postgres.rate, "cmd/s"),
        Figure(
            t,
            "deposits/s on a SQLite file (2xx), write API + worker",
            sqlite.rate,
            "cmd/s",
            ratio,
            "PostgreSQL",
            f"≥ {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
        ),
        Figure(
            t,
            "deposits/s on a SQLite file (2xx), against the absolute target",
            sqlite.rate,
            "cmd/s",
            sqlite.rate / TARGET_RATE,
            f"{TARGET_RATE:,.0f}/s",
            "≥ 1",
            sqlite.rate >= TARGET_RATE,
        ),
        Figure(
            t,
            "SQLite p99 latency",
            sqlite.p99_ms,
            "ms",
            sqlite.p99_ms / postgres.p99_ms if postgres.p99_ms else None,
            "PostgreSQL",
        ),
    ]
    note = (
        f"{TITLE}: SQLite {sqlite.rate:,.0f}/s (p50/p99 {sqlite.p50_ms:.1f}/{sqlite.p99_ms:.1f} ms, "
        f"{sqlite.failed:,} failed), PostgreSQL {postgres.rate:,.0f}/s (p50/p99 "
        f"{postgres.p50_ms:.1f}/{postgres.p99_ms:.1f} ms, {postgres.failed:,} failed), "
        f"{sqlite.seconds:.0f} s each at 32 connections, {config.workers} write-API worker(s), "
        "a projection worker running on each."
    )
    outcome = Outcome(figures=figures, notes=[note])
    outcome.profiles.extend(profiles or [])
    return outcome
