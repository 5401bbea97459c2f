"""Benchmark 7: the same deposit workload through the `eventsourcing` library (PostgreSQL
persistence, snapshots every 100) and through ours (event store + aggregate, snapshots every 100).

In-process: one caller each, commands one after another, over 100 accounts round-robin, for the
same time: the figure is the cost of one command, which is what a peer comparison can be fair on.
Over HTTP: the library's Application behind Litestar on the server the write API runs on
(`bench.peer_app:create_http_app`, served as the APIs are: granian, the API's worker count) against `bank write-api`,
the same wrk deposit load as benchmark 1 (1,000 accounts, 32 connections) on each.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from urllib.parse import urlsplit

from bench import serving
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.fill import open_load_accounts
from bench.http_load import ACCOUNTS as HTTP_ACCOUNTS
from bench.http_load import measure_server
from bench.peer_app import PeerBank, postgres_env
from bench.profiling import sampled
from bench.results import Figure, Outcome
from bench.servers import free_port
from bench.wrk import LoadResult, account_id
from write_side.account_cache import CachedAccounts
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

NAME = "peer"
TITLE = "7. peer: eventsourcing library"
ACCOUNTS = 100
TARGET_RATIO = 5.0
AMOUNT = Decimal("1.00")
PEER_HTTP_APP = "bench.peer_app:create_http_app"


def _peer_env(env: BenchEnv) -> dict[str, str]:
    return postgres_env(urlsplit(env.database_url).path.lstrip("/"))


def _peer_rate(env: BenchEnv, seconds: float, profiles: list[str] | None) -> float:
    app = PeerBank(env=_peer_env(env))
    try:
        ids = [app.open_account(f"peer-{n}", f"owner {n}") for n in range(ACCOUNTS)]
        for n in range(ACCOUNTS):  # warm up
            app.deposit(ids[n], AMOUNT)
        done = 0
        with sampled(os.getpid(), "eventsourcing: deposit", profiles):
            started = time.perf_counter()
            deadline = started + seconds
            while time.perf_counter() < deadline:
                app.deposit(ids[done % ACCOUNTS], AMOUNT)
                done += 1
            return done / (time.perf_counter() - started)
    finally:
        app.close()


async def _our_rate(env: BenchEnv, seconds: float, profiles: list[str] | None) -> float:
    engine = create_async_store_engine(env.database_url, pool_size=2)
    # The command path as the write API runs it: with the account cache.
    repository = CachedAccounts(AccountRepository(EventStore(engine), 100))
    bus = CommandBus(repository, NoPublisher(), 2.0)
    try:
        ids = [f"in-process-{n:03d}" for n in range(ACCOUNTS)]
        for account_id in ids:
            await bus.execute(OpenAccount(f"owner {account_id}", "USD", account_id))
        for account_id in ids:  # warm up
            await bus.execute(Deposit(account_id, AMOUNT))
        done = 0
        with sampled(os.getpid(), "CommandBus: deposit", profiles):
            started = time.perf_counter()
            deadline = started + seconds
            while time.perf_counter() < deadline:
                await bus.execute(Deposit(ids[done % ACCOUNTS], AMOUNT))
                done += 1
            return done / (time.perf_counter() - started)
    finally:
        await engine.dispose()


def _http_rates(
    env: BenchEnv, config: BenchConfig, profiles: list[str] | None
) -> tuple[LoadResult, LoadResult]:
    """The same wrk deposits on the library behind Litestar and on `bank write-api`."""
    app = PeerBank(env=_peer_env(env))
    try:
        for n in range(HTTP_ACCOUNTS):
            app.open_account(account_id(n), f"owner {n}")
    finally:
        app.close()
    asyncio.run(open_load_accounts(env, HTTP_ACCOUNTS, project=False))
    port = free_port()
    peer = measure_server(
        f"eventsourcing behind Litestar on granian ({config.workers} worker)",
        serving.served_like_the_apis(PEER_HTTP_APP, port, config.workers),
        port,
        "deposits",
        config,
        env={**os.environ, **_peer_env(env)},
        profiles=profiles,
    )
    port = free_port()
    ours = measure_server(
        "write API (bank write-api)",
        serving.bank("write-api", port, config.workers),
        port,
        "deposits",
        config,
        env=env.process_env(),
    )
    return peer, ours


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    seconds = config.seconds(10, 3, 0.5)
    profiles: list[str] | None = [] if config.profile else None
    peer = _peer_rate(env, seconds, profiles)
    ours = asyncio.run(_our_rate(env, seconds, profiles))
    peer_http, ours_http = _http_rates(env, config, profiles)
    http_ratio = ours_http.rate / peer_http.rate if peer_http.rate else 0.0
    t = TITLE
    outcome = Outcome(
        figures=[
            Figure(t, "peer: eventsourcing Application, deposits", peer, "cmd/s"),
            Figure(
                t,
                "ours: CommandBus, deposits",
                ours,
                "cmd/s",
                ours / peer,
                "eventsourcing",
                f"≥ {TARGET_RATIO:g} x the peer",
                ours / peer >= TARGET_RATIO,
            ),
            Figure(
                t,
                "peer over HTTP: eventsourcing behind Litestar (granian), deposits/s (2xx)",
                peer_http.rate,
                "cmd/s",
            ),
            Figure(
                t,
                "ours over HTTP: bank write-api, deposits/s (2xx)",
                ours_http.rate,
                "cmd/s",
                http_ratio,
                "eventsourcing over HTTP",
                f"≥ {TARGET_RATIO:g} x the peer",
                http_ratio >= TARGET_RATIO,
            ),
        ],
        notes=[
            f"{TITLE}: in-process one caller each, {ACCOUNTS} accounts round-robin, {seconds:g} s "
            f"each; over HTTP wrk, {HTTP_ACCOUNTS:,} accounts, 32 connections: peer "
            f"{peer_http.ok:,} answered 2xx, {peer_http.failed:,} failed, p50/p99 "
            f"{peer_http.p50_ms:.1f}/{peer_http.p99_ms:.1f} ms; ours {ours_http.ok:,} 2xx, "
            f"{ours_http.failed:,} failed, p50/p99 {ours_http.p50_ms:.1f}/{ours_http.p99_ms:.1f} ms."
        ],
    )
    outcome.profiles.extend(profiles or [])
    return outcome
