"""Benchmark 9: a busy account. Deposits into ONE account from 4, 16, 32 and 64 connections, against
deposits spread over 1,000 accounts from 32 connections, all on the same `bank write-api` server
(real PostgreSQL, no projection worker), driven by wrk.

A ledger's hot accounts (a merchant receiving payments, a fee account) are its normal case: the
figure is how much of the spread throughput one account keeps, and whether it holds as clients
are added. Failed answers (503 `command_timed_out`, timeouts) are counted, not hidden in the rate.
"""

from __future__ import annotations

import asyncio
import itertools

from bench import serving
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import open_load_accounts
from bench.http_load import ACCOUNTS
from bench.profiling import sampled
from bench.results import Figure, Outcome
from bench.servers import free_port, running
from bench.wrk import LoadResult, account_id, run_wrk

NAME = "hot_account"
TITLE = "9. one busy account over HTTP"
TARGET_RATIO = 0.5
SPREAD_CONNECTIONS = 32
HOT_CONNECTIONS = (4, 16, 32, 64)
RATIO_CONNECTIONS = 32
HOT_ACCOUNT = account_id(0)
"""The Lua script addresses acct-0000 ... acct-(n-1): with one account, always this one."""


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    asyncio.run(open_load_accounts(env, ACCOUNTS, project=False))
    profiles: list[str] | None = [] if config.profile else None
    seconds = config.seconds(10, 3, 1)
    port = free_port()
    with running(
        "write API (bank write-api)",
        serving.bank("write-api", port, config.workers),
        env=env.process_env(),
        port=port,
    ) as server:
        if not config.smoke:
            run_wrk(server.url, "deposits", config.seconds(2, 1), ACCOUNTS)  # warm-up
        spread = run_wrk(server.url, "deposits", seconds, ACCOUNTS, SPREAD_CONNECTIONS)
        hot: dict[int, LoadResult] = {}
        for connections in HOT_CONNECTIONS:
            sample = profiles if connections == RATIO_CONNECTIONS else None
            with sampled(
                server.process.pid,
                f"hot account, {connections} connections",
                sample,
                subprocesses=True,
            ):
                hot[connections] = run_wrk(server.url, "deposits", seconds, 1, connections)
    outcome = Outcome(figures=_figures(spread, hot), notes=[_note(spread, hot)])
    outcome.profiles.extend(profiles or [])
    return outcome


def _never_falls(hot: dict[int, LoadResult]) -> bool:
    """Throughput holds as clients are added (within 10%: two runs of one load differ that much)."""
    rates = [hot[c].rate for c in HOT_CONNECTIONS]
    return all(later >= 0.9 * earlier for earlier, later in itertools.pairwise(rates))


def _figures(spread: LoadResult, hot: dict[int, LoadResult]) -> list[Figure]:
    t = TITLE
    ratio = hot[RATIO_CONNECTIONS].rate / spread.rate if spread.rate else 0.0
    failed = sum(result.failed for result in hot.values())
    figures = [
        Figure(t, f"deposits/s over {ACCOUNTS:,} accounts, 32 connections", spread.rate, "cmd/s")
    ]
    for connections in HOT_CONNECTIONS:
        result = hot[connections]
        met = ratio >= TARGET_RATIO if connections == RATIO_CONNECTIONS else None
        figures.append(
            Figure(
                t,
                f"deposits/s into one account, {connections} connections",
                result.rate,
                "cmd/s",
                result.rate / spread.rate if spread.rate else 0.0,
                f"{ACCOUNTS:,} accounts",
                f"≥ {TARGET_RATIO}" if connections == RATIO_CONNECTIONS else "",
                met,
            )
        )
    figures.append(
        Figure(
            t,
            "one account: 64 vs 4 connections (never falls as clients are added)",
            hot[HOT_CONNECTIONS[-1]].rate,
            "cmd/s",
            hot[HOT_CONNECTIONS[-1]].rate / hot[HOT_CONNECTIONS[0]].rate
            if hot[HOT_CONNECTIONS[0]].rate
            else 0.0,
            "4 connections",
            "no fall, no failed answer",
            _never_falls(hot) and failed == 0,
        )
    )
    return figures


def _note(spread: LoadResult, hot: dict[int, LoadResult]) -> str:
    parts = [
        f"{c} conn {hot[c].rate:,.0f}/s p99 {hot[c].p99_ms:.0f} ms, {hot[c].failed:,} failed"
        for c in HOT_CONNECTIONS
    ]
    return (
        f"{TITLE}: spread over {ACCOUNTS:,} accounts {spread.rate:,.0f}/s p99 "
        f"{spread.p99_ms:.0f} ms, {spread.failed:,} failed; one account: {'; '.join(parts)} "
        f"({spread.seconds:.0f} s each; failed = answers ≥ 400 and socket errors)."
    )
