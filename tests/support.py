"""Helpers shared by the integration, end-to-end and fault tests: per-test settings, generated
traffic, an independent replay of the store (the expected read models), what Redis actually holds,
and real `bank` processes.

The replay below is deliberately written without the projector code: it is the model the
projections are checked against.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis
import sqlalchemy as sa

from auth.local_key import ensure_local_key
from auth.mirror import mirror_api_keys
from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    MoneyDeposited,
    MoneyWithdrawn,
    NewEvent,
    OverdraftLimitSet,
    TransferReceived,
    TransferSent,
)
from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore
from write_side.store.records import Snapshot, TransferRecord
from write_side.store.schema import commands

BANK = [sys.executable, "-m", "app.cli"]


_GROUP_OF = {
    "database_url": ("store", "database_url"),
    "snapshot_every": ("store", "snapshot_every"),
    "command_deadline_ms": ("store", "command_deadline_ms"),
    "idempotency_retention": ("store", "idempotency_retention"),
    "redis_url": ("redis", "url"),
    "redis_prefix": ("redis", "prefix"),
    "queue_name": ("redis", "queue"),
    "sweep_interval_s": ("worker", "sweep_interval_s"),
    "auth_enabled": ("auth", "enabled"),
    "master_key": ("personal_data", "master_key"),
}


def make_settings(base: Settings | None = None, **flat: Any) -> Settings:
    """Settings from flat test-friendly names (`database_url=`, `redis_prefix=`...), on top of
    `base` or the defaults."""
    settings = base or Settings()
    groups: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        group, field_name = _GROUP_OF[name]
        groups.setdefault(group, {})[field_name] = value
    for group, values in groups.items():
        settings = msgspec.structs.replace(
            settings, **{group: msgspec.structs.replace(getattr(settings, group), **values)}
        )
    return settings


def read_side_settings(
    database_url: str, redis_url: str, prefix: str, *, auth_enabled: bool = False
) -> Settings:
    """Authentication is off unless asked for: test_api_auth.py covers it on the real apps."""
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        queue_name=f"{prefix}-projections",
        sweep_interval_s=1,
        auth_enabled=auth_enabled,
    )


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.store.database_url,
        "REDIS_URL": settings.redis.url,
        "REDIS_PREFIX": settings.redis.prefix,
        "RQ_QUEUE": settings.redis.queue,
        "SWEEP_INTERVAL_S": str(settings.worker.sweep_interval_s),
        "BANK_AUTH": "on" if settings.auth.enabled else "off",
        "IDEMPOTENCY_RETENTION": f"{int(settings.store.idempotency_retention.total_seconds())}s",
        "BANK_MASTER_KEY": settings.personal_data.master_key or "",
    }


def age_command_records(database_url: str, age: timedelta) -> None:
    """Make every idempotency record look `age` old, as if written that long ago."""
    engine = create_sync_store_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(commands.update().values(recorded_at=datetime.now(UTC) - age))
    finally:
        engine.dispose()


def command_record_count(database_url: str) -> int:
    engine = create_sync_store_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(commands)).scalar_one())
    finally:
        engine.dispose()


# --- traffic ------------------------------------------------------------------------------------


def account_histories(
    accounts: int, events_per_account: int, seed: int
) -> dict[str, list[DomainEvent]]:
    """Valid histories: open, deposits and withdrawals that never overdraw, some accounts closed."""
    rng = random.Random(seed)
    histories: dict[str, list[DomainEvent]] = {}
    for n in range(accounts):
        currency = rng.choice(["USD", "EUR"])
        events: list[DomainEvent] = [AccountOpened(owner=f"owner-{n}", currency=currency)]
        balance = Decimal(0)
        for _ in range(events_per_account - 1):
            amount = Decimal(rng.randint(1, 50_000)) / 100
            if balance >= amount and rng.random() < 0.4:
                events.append(MoneyWithdrawn(amount))
                balance -= amount
            else:
                events.append(MoneyDeposited(amount))
                balance += amount
        if n % 7 == 3:  # the domain closes only empty accounts
            events += [MoneyWithdrawn(balance)] if balance else []
            events.append(AccountClosed())
        histories[f"acct-{n:05d}"] = events
    return histories


async def append_histories(
    store: EventStore, histories: dict[str, list[DomainEvent]], chunk: int = 10
) -> int:
    """Append round-robin, `chunk` events per append, so streams interleave in global order."""
    versions = dict.fromkeys(histories, 0)
    last_position = 0
    while any(versions[a] < len(h) for a, h in histories.items()):
        for account_id, history in histories.items():
            start = versions[account_id]
            if start >= len(history):
                continue
            batch = [NewEvent.from_domain(e) for e in history[start : start + chunk]]
            result = await store.append(account_id, batch, start)
            versions[account_id] = result.last_version
            last_position = result.last_position
    return last_position


async def append_transfer(
    store: EventStore,
    source: str,
    target: str,
    amount: str,
    transfer_id: str,
    reference: str | None = None,
    reversal_of: str | None = None,
) -> int:
    """Both sides of a transfer (a reversal of `reversal_of`, if given) in one store transaction,
    as the write side appends them; returns the position of the last side."""
    money = Decimal(amount)
    sent = TransferSent(transfer_id, target, money, reference, reversal_of)
    received = TransferReceived(transfer_id, source, money, reference, reversal_of)
    sides = [(source, NewEvent.from_domain(sent)), (target, NewEvent.from_domain(received))]
    versions = {stream: await store.stream_version(stream) for stream in (source, target)}
    claim = TransferRecord(transfer_id, "0" * 64, {"status": "posted"})
    result = await store.append_many(sides, versions, transfers=[claim])
    return result.last_position


async def set_overdraft_limit(store: EventStore, account_id: str, limit: str) -> int:
    event = NewEvent.from_domain(OverdraftLimitSet(Decimal(limit)))
    version = await store.stream_version(account_id)
    return (await store.append(account_id, [event], version)).last_position


def write_traffic(
    database_url: str, accounts: int, events_per_account: int, seed: int = 7, chunk: int = 10
) -> int:
    """Append generated traffic; returns the store's head position."""

    async def run() -> int:
        engine = create_async_store_engine(database_url)
        try:
            histories = account_histories(accounts, events_per_account, seed)
            return await append_histories(EventStore(engine), histories, chunk)
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --- expected and actual read models ------------------------------------------------------------


@dataclass
class Models:
    balances: dict[str, dict[str, Any]] = field(default_factory=dict)
    statements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


async def replay_store(database_url: str) -> Models:
    """The read models computed straight from the store, independently of the projectors."""
    engine = create_async_store_engine(database_url)
    models, balances = Models(), dict[str, Decimal]()
    try:
        store, position = EventStore(engine), 0
        while events := await store.read_after(position, 5000):
            position = events[-1].position
            for e in events:
                amount = Decimal(e.payload.get("amount", "0"))
                if e.type in ("MoneyWithdrawn", "TransferSent"):
                    amount = -amount
                balances[e.stream_id] = balances.get(e.stream_id, Decimal(0)) + amount
                row = models.balances.setdefault(
                    e.stream_id, {"status": "open", "overdraft_limit": "0.00"}
                )
                row.update(e.payload if e.type == "AccountOpened" else {})
                row["status"] = "closed" if e.type == "AccountClosed" else row["status"]
                if e.type == "OverdraftLimitSet":
                    row["overdraft_limit"] = _money(Decimal(e.payload["limit"]))
                row.update(
                    balance=_money(balances[e.stream_id]), version=e.version, position=e.position
                )
                models.statements.setdefault(e.stream_id, []).append(
                    {"version": e.version, "event_id": str(e.event_id), "type": e.type,
                     "amount": _money(amount), "balance_after": _money(balances[e.stream_id]),
                     "reference": e.payload.get("reference"),
                     "transfer_id": e.payload.get("transfer_id"),
                     "counterparty": e.payload.get("counterparty"),
                     "reversal_of": e.payload.get("reversal_of")}
                )  # fmt: skip
    finally:
        await engine.dispose()
    for entries in models.statements.values():
        entries.reverse()  # newest first, as the statement is served
    return models


def replay(database_url: str) -> Models:
    return asyncio.run(replay_store(database_url))


def projected(client: redis.Redis, prefix: str) -> Models:
    """What Redis holds in the live generations, in the replay's shape (raw keys, no query API)."""
    keys, models = ReadModelKeys(prefix), Models()
    balances = keys.generation(BALANCES, int(client.get(keys.live(BALANCES)) or 1))
    statements = keys.generation(STATEMENTS, int(client.get(keys.live(STATEMENTS)) or 1))
    for account_id in client.zrange(balances.by_id, 0, -1):
        row = client.hgetall(balances.account(account_id))
        models.balances[account_id] = {
            "owner": row["owner"],
            "currency": row["currency"],
            "status": row["status"],
            "balance": _money(Decimal(int(row["balance"])) / 100),
            "version": int(row["version"]),
            "position": int(row["position"]),
            "overdraft_limit": _money(Decimal(int(row["overdraft_limit"])) / 100),
        }
        members = client.zrevrange(statements.statement(account_id), 0, -1)
        entries = [msgspec.json.decode(m) for m in members]
        for entry in entries:
            del entry["recorded_at"]
        models.statements[account_id] = entries
    return models


def checkpoints(client: redis.Redis, prefix: str) -> dict[str, int]:
    """Each projection's live checkpoint, read with a plain client and no product code: like
    `replay` above, an independent view of what the projectors wrote (the product computes
    projection status once, in `read_side.readers.ReadModelReader.projections`)."""
    keys = ReadModelKeys(prefix)
    result = {}
    for name in (BALANCES, STATEMENTS):
        generation = int(client.get(keys.live(name)) or 1)
        result[name] = int(client.hget(keys.generation(name, generation).meta, "position") or 0)
    return result


# --- processes and waiting ----------------------------------------------------------------------


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.02
) -> None:
    """Poll `condition` until it holds; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_bank(args: list[str], settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start `bank <args>` with the test's settings in its environment; output goes to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([*BANK, *args], env=env_for(settings), stdout=out, stderr=out)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """The async twin of `wait_until`."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def mirror_keys(settings: Settings) -> int:
    """Rewrite the API-key mirror from SQL, as the worker's sweep does."""
    engine = create_sync_store_engine(settings.store.database_url)
    try:
        return mirror_api_keys(settings, engine=engine)
    finally:
        engine.dispose()


def local_key(database_url: str, key_file: Path) -> str:
    """What `bank up` does for its key: `ensure_local_key` on its own engine."""
    engine = create_sync_store_engine(database_url)
    try:
        return ensure_local_key(engine, key_file)
    finally:
        engine.dispose()


async def stored_snapshot(store: EventStore, stream_id: str) -> Snapshot | None:
    """The stream's snapshot whatever its schema version (the store's own replay read)."""
    snapshot, _ = await store.load_for_replay(stream_id, (0, 32767))
    return snapshot


def _serving(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_services(settings: Settings, logs: Path) -> Iterator[tuple[str, str]]:
    """Real `bank write-api`, `bank query-api` and `bank worker` processes on free ports, all
    stopped on the way out; yields the two API URLs once both answer."""
    write_port, query_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for args in (
            ["write-api", "--port", str(write_port)],
            ["query-api", "--port", str(query_port)],
            ["worker"],
        ):
            processes.append(start_bank(args, settings, logs / f"{args[0]}.log"))
        urls = f"http://127.0.0.1:{write_port}", f"http://127.0.0.1:{query_port}"
        for url in urls:
            wait_until(lambda url=url: _serving(url), 30, f"{url} to answer")
        yield urls
    finally:
        for process in processes:
            stop(process)
