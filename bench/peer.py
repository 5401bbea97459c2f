"""Benchmark 7: the same deposit workload in-process through the `eventsourcing` library (PostgreSQL
persistence, snapshots every 100) and through our CommandBus (event store + aggregate, snapshots
every 100). One caller each, commands one after another, over 100 accounts round-robin, for the
same time: the figure is the cost of one command, which is what a peer comparison can be fair on.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from urllib.parse import urlsplit

from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.peer_app import PeerBank, postgres_env
from bench.profiling import sampled
from bench.results import Figure, Outcome
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


def _peer_rate(env: BenchEnv, seconds: float, profiles: list[str] | None) -> float:
    dbname = urlsplit(env.database_url).path.lstrip("/")
    app = PeerBank(env=postgres_env(dbname))
    try:
        ids = [app.open_account(f"owner {n}") for n in range(ACCOUNTS)]
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
        ids = [f"acct-{n:04d}" for n in range(ACCOUNTS)]
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


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    seconds = config.seconds(10, 3, 0.5)
    profiles: list[str] | None = [] if config.profile else None
    peer = _peer_rate(env, seconds, profiles)
    ours = asyncio.run(_our_rate(env, seconds, profiles))
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
        ],
        notes=[f"{TITLE}: one caller each, {ACCOUNTS} accounts round-robin, {seconds:g} s each."],
    )
    outcome.profiles.extend(profiles or [])
    return outcome
