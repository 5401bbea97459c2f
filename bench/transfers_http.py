"""Benchmark 12: transfers over HTTP. Transfers of 1.00 between random pairs of 1,000 funded
accounts, against deposits over the same accounts, both from 32 connections, on the same
`bank write-api` server (real PostgreSQL, no projection worker), driven by wrk.

A transfer decides on two accounts and appends both sides in one store transaction, with its
transfer id claimed in that transaction; the figure is what that costs against a deposit (one
account, one event). The accounts are funded far beyond what the run can move out of them, so no
transfer is refused for want of money: every answer that is not 2xx is a failure and is counted.
The two loads alternate (deposits, transfers, transfers, deposits) so a change in the machine's
other load during the run weighs on both alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bench import serving
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import deposited, opened
from bench.http_load import ACCOUNTS
from bench.profiling import sampled
from bench.results import Figure, Outcome
from bench.servers import free_port, running
from bench.wrk import CONNECTIONS, LoadResult, account_id, run_wrk
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

NAME = "transfers_http"
TITLE = "12. transfers over HTTP"
TARGET_RATIO = 0.8
FUNDING_CENTS = 100_000_000
"""1,000,000.00 per account: a run moves a few dozen 1.00 transfers out of each."""
ORDER = ("deposits", "transfers", "transfers", "deposits")


async def open_funded_accounts(env: BenchEnv, count: int) -> None:
    """Open the accounts the load scripts address, each with its funding deposit (one append)."""
    engine = create_async_store_engine(env.database_url, pool_size=2)
    store = EventStore(engine)
    try:
        for n in range(count):
            await store.append(account_id(n), [opened(account_id(n)), deposited(FUNDING_CENTS)], 0)
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Rounds:
    """The rounds of one kind of load, added up."""

    results: Sequence[LoadResult]

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.results)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        """The worse round's p99 (wrk reports percentiles per run; they do not add up)."""
        return max(r.p99_ms for r in self.results)

    @property
    def p50_ms(self) -> float:
        return max(r.p50_ms for r in self.results)


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    asyncio.run(open_funded_accounts(env, ACCOUNTS))
    profiles: list[str] | None = [] if config.profile else None
    order = ORDER[:2] if config.smoke else ORDER
    seconds = config.seconds(10, 3, 1) / order.count("deposits")
    port = free_port()
    results: dict[str, list[LoadResult]] = {"deposits": [], "transfers": []}
    with running(
        "write API (bank write-api)",
        serving.bank("write-api", port, config.workers),
        env=env.process_env(),
        port=port,
    ) as server:
        if not config.smoke:
            for kind in ("deposits", "transfers"):  # warm-up: caches, connections, plans
                run_wrk(server.url, kind, config.seconds(2, 1), ACCOUNTS)
        for kind in order:
            sample = profiles if kind == "transfers" and not results[kind] else None
            with sampled(
                server.process.pid, "write API under transfers", sample, subprocesses=True
            ):
                results[kind].append(run_wrk(server.url, kind, seconds, ACCOUNTS))
    deposits, transfers = Rounds(results["deposits"]), Rounds(results["transfers"])
    outcome = Outcome(figures=_figures(deposits, transfers), notes=[_note(deposits, transfers)])
    outcome.profiles.extend(profiles or [])
    return outcome


def _figures(deposits: Rounds, transfers: Rounds) -> list[Figure]:
    t = TITLE
    ratio = transfers.rate / deposits.rate if deposits.rate else 0.0
    return [
        Figure(t, f"deposits/s over {ACCOUNTS:,} accounts (2xx)", deposits.rate, "cmd/s"),
        Figure(
            t,
            "transfers/s between random pairs (2xx)",
            transfers.rate,
            "cmd/s",
            ratio,
            "deposits",
            f"≥ {TARGET_RATIO}",
            ratio >= TARGET_RATIO,
        ),
        Figure(t, "deposits p99 latency", deposits.p99_ms, "ms"),
        Figure(
            t,
            "transfers p99 latency",
            transfers.p99_ms,
            "ms",
            transfers.p99_ms / deposits.p99_ms if deposits.p99_ms else 0.0,
            "deposits p99",
        ),
    ]


def _note(deposits: Rounds, transfers: Rounds) -> str:
    def part(name: str, rounds: Rounds) -> str:
        return (
            f"{rounds.ok:,} {name} answered 2xx, {rounds.failed:,} failed (status ≥ 400 or socket "
            f"errors), p50/p99 {rounds.p50_ms:.1f}/{rounds.p99_ms:.1f} ms"
        )

    return (
        f"{TITLE}: {part('deposits', deposits)}; {part('transfers', transfers)}; "
        f"{CONNECTIONS} connections, {len(deposits.results)} round(s) of each kind, alternating, "
        f"{deposits.seconds:.0f} s of each in all; percentiles are the worse round's."
    )
