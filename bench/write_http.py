"""Benchmark 1: deposits over HTTP to 1,000 accounts, 32 connections, wrk in its own process.

Ceiling: a minimal Litestar app that decodes the same body into the same msgspec Struct, on one
granian process (the fastest single-process figure here); peer: the same minimal app on uvicorn with
the API's worker count, as `bank write-api` serves it. The write API runs without a projection
worker (its nudges only queue a job), so the figure is the write side's alone.
"""

from __future__ import annotations

import asyncio

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import open_load_accounts
from bench.http_load import ACCOUNTS, measure_against_ceilings
from bench.results import Figure, Outcome

NAME = "write_http"
TITLE = "1. write throughput over HTTP"
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
POST_APP = "bench.minimal_apps:create_post_app"


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    asyncio.run(open_load_accounts(env, ACCOUNTS, project=False))
    workers = config.workers
    profiles: list[str] | None = [] if config.profile else None
    measured = measure_against_ceilings(
        POST_APP,
        "minimal app",
        "write-api",
        "write API (bank write-api)",
        "deposits",
        config,
        env=env.process_env(),
        profiles=profiles,
    )
    granian, uvicorn, api = measured.granian, measured.uvicorn, measured.api
    t = TITLE
    outcome = Outcome(
        figures=[
            Figure(t, "ceiling: minimal app, granian, 1 process", granian.rate, "req/s"),
            Figure(t, f"peer: minimal app, uvicorn, {workers} worker", uvicorn.rate, "req/s"),
            Figure(
                t,
                "deposits/s (2xx)",
                api.rate,
                "cmd/s",
                api.rate / granian.rate,
                "granian ceiling",
                f"≥ {TARGET_RATIO}",
                api.rate / granian.rate >= TARGET_RATIO,
            ),
            Figure(
                t, "deposits/s (2xx)", api.rate, "cmd/s", api.rate / uvicorn.rate, "uvicorn peer"
            ),
            Figure(
                t, "p50 latency", api.p50_ms, "ms", api.p50_ms / granian.p50_ms, "granian ceiling"
            ),
            Figure(
                t,
                "p99 latency",
                api.p99_ms,
                "ms",
                api.p99_ms / granian.p99_ms,
                "granian ceiling",
                f"≤ {TARGET_P99_MS:g} ms",
                api.p99_ms <= TARGET_P99_MS,
            ),
        ],
        notes=[
            f"{TITLE}: {api.ok:,} deposits answered 2xx, {api.failed:,} failed, in "
            f"{api.seconds:.1f} s at 32 connections; ceiling p50/p99 {granian.p50_ms:.2f}/"
            f"{granian.p99_ms:.2f} ms, uvicorn peer p50/p99 {uvicorn.p50_ms:.2f}/{uvicorn.p99_ms:.2f} ms."
        ],
    )
    outcome.profiles.extend(profiles or [])
    return outcome
