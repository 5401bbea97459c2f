"""What the hash chain costs an append: `python -m bench.chain_overhead [seconds]`.

PostgreSQL: EventStore.append (16 tasks, one event each, as benchmark 2) on a database migrated to
0005 (no chain) and on one migrated to head, in alternating rounds so that load from other
processes hits both alike. SQLite: the same against `append_sqlite` before and after the chain (the
previous code is taken from git, `BASELINE_COMMIT`). Prints each rate and the ratio chained/plain.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from alembic import command

from bench.config import PG_ADMIN_URL
from bench.fill import deposited
from write_side.store import event_store
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.migrate import alembic_config
from write_side.store.sqlite_append import append_sqlite

TASKS = 16
ROUNDS = 5
BASELINE_COMMIT = "2973119"
"""The commit before the chain."""


async def _rate(url: str, seconds: float) -> float:
    engine = create_async_store_engine(url, pool_size=TASKS)
    store = EventStore(engine)
    deadline = time.perf_counter() + seconds
    counts = [0] * TASKS

    async def task(n: int) -> None:
        stream, version = f"s-{n}-{uuid.uuid4().hex[:6]}", 0
        while time.perf_counter() < deadline:
            await store.append(stream, [deposited()], version)
            version += 1
            counts[n] += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(task(n) for n in range(TASKS)))
    finally:
        await engine.dispose()
    return sum(counts) / (time.perf_counter() - started)


def _baseline_sqlite_append() -> Callable[..., Awaitable[object]]:
    source = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:write_side/store/sqlite_append.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_sqlite_append.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_sqlite_append", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    append: Callable[..., Awaitable[object]] = module.append_sqlite
    return append


def _compare(label: str, plain: Callable[[], float], chained: Callable[[], float]) -> None:
    plain_rates, chained_rates = [], []
    for _ in range(ROUNDS):
        plain_rates.append(plain())
        chained_rates.append(chained())
    best_plain, best_chained = max(plain_rates), max(chained_rates)
    print(
        f"{label}: plain {best_plain:,.0f}/s, chained {best_chained:,.0f}/s, "
        f"ratio {best_chained / best_plain:.3f} (best of {ROUNDS} rounds each)"
    )


def _postgres(seconds: float) -> None:
    names = [f"bench_chain_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    base = PG_ADMIN_URL.rpartition("/")[0]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        plain_url, chained_url = (f"{base}/{name}" for name in names)
        command.upgrade(alembic_config(plain_url), "0005")
        command.upgrade(alembic_config(chained_url), "head")
        _compare(
            "PostgreSQL EventStore.append",
            lambda: asyncio.run(_rate(plain_url, seconds)),
            lambda: asyncio.run(_rate(chained_url, seconds)),
        )
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite(seconds: float) -> None:
    folder = Path(tempfile.mkdtemp())
    plain_url, chained_url = f"sqlite:///{folder / 'plain.db'}", f"sqlite:///{folder / 'chain.db'}"
    command.upgrade(alembic_config(plain_url), "0005")
    command.upgrade(alembic_config(chained_url), "head")
    baseline = _baseline_sqlite_append()
    names = vars(event_store)  # the store calls the append_sqlite it imported: swap that name

    def with_append(append: Callable[..., Awaitable[object]], url: str) -> float:
        names["append_sqlite"] = append
        try:
            return asyncio.run(_rate(url, seconds))
        finally:
            names["append_sqlite"] = append_sqlite

    _compare(
        "SQLite EventStore.append",
        lambda: with_append(baseline, plain_url),
        lambda: with_append(append_sqlite, chained_url),
    )


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    _postgres(seconds)
    _sqlite(seconds)


if __name__ == "__main__":
    main()
