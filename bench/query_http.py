"""Benchmark 6: GET /accounts/{id}/balance over 1,000 projected accounts, 32 connections, wrk.

Ceiling: a minimal Litestar GET route answering a constant Struct on one granian process; peer: the
same minimal app on uvicorn with the query API's worker count, as `bank query-api` serves it.
"""

from __future__ import annotations

import asyncio

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import open_load_accounts
from bench.http_load import ACCOUNTS, measure_against_ceilings
from bench.results import Figure, Outcome

NAME = "query_http"
TITLE = "6. query throughput over HTTP"
TARGET_RATIO = 0.6
GET_APP = "bench.minimal_apps:create_get_app"


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    asyncio.run(open_load_accounts(env, ACCOUNTS, project=True))
    workers = config.workers
    profiles: list[str] | None = [] if config.profile else None
    measured = measure_against_ceilings(
        GET_APP,
        "minimal GET app",
        "query-api",
        "query API (bank query-api)",
        "balances",
        config,
        env=env.process_env(),
        profiles=profiles,
    )
    granian, uvicorn, api = measured.granian, measured.uvicorn, measured.api
    t = TITLE
    ratio = api.rate / granian.rate
    outcome = Outcome(
        figures=[
            Figure(t, "ceiling: minimal GET app, granian, 1 process", granian.rate, "req/s"),
            Figure(t, f"peer: minimal GET app, uvicorn, {workers} worker", uvicorn.rate, "req/s"),
            Figure(
                t,
                "balance reads/s (2xx)",
                api.rate,
                "req/s",
                ratio,
                "granian ceiling",
                f"≥ {TARGET_RATIO}",
                ratio >= TARGET_RATIO,
            ),
            Figure(
                t,
                "balance reads/s (2xx)",
                api.rate,
                "req/s",
                api.rate / uvicorn.rate,
                "uvicorn peer",
            ),
            Figure(
                t, "p99 latency", api.p99_ms, "ms", api.p99_ms / granian.p99_ms, "granian ceiling"
            ),
        ],
        notes=[
            f"{TITLE}: {api.ok:,} reads answered 2xx, {api.failed:,} failed, in {api.seconds:.1f} s; "
            f"p50 {api.p50_ms:.2f} ms (ceiling {granian.p50_ms:.2f} ms)."
        ],
    )
    outcome.profiles.extend(profiles or [])
    return outcome
