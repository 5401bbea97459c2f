"""What the hash chain costs an append: `python -m bench.chain_overhead [seconds]`.

PostgreSQL: EventStore.append (16 tasks, one event each, as benchmark 2) on a database migrated to
0005 (no chain) and on one migrated to head, in alternating rounds so that load from other
processes hits both alike. SQLite: the same through the SQLite writer on a database at head, with
the chain's work (canonical JSON and SHA-256 per event) and with it replaced by a constant hash.
Prints each rate and the ratio chained/plain.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from alembic import command

from bench.config import PG_ADMIN_URL
from bench.fill import deposited
from kernel.chain import canonical_json, event_hash
from write_side.store import sqlite_append
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.migrate import alembic_config

TASKS = 16
ROUNDS = 7
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


def _compare(label: str, plain: Callable[[], float], chained: Callable[[], float]) -> None:
    """Alternating rounds; the median of each round's chained/plain ratio resists the load that
    other processes put on a shared machine better than comparing best rates."""
    pairs = [(plain(), chained()) for _ in range(ROUNDS)]
    ratios = sorted(c / p for p, c in pairs)
    print(
        f"{label}: plain {statistics.median(p for p, _ in pairs):,.0f}/s, chained "
        f"{statistics.median(c for _, c in pairs):,.0f}/s (medians); chained/plain ratio median "
        f"{statistics.median(ratios):.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f} "
        f"({ROUNDS} alternating rounds)"
    )


_SERVER_LOOP = """
DO $$
DECLARE i integer; s text := md5(random()::text);
BEGIN
  FOR i IN 1..%d LOOP
    PERFORM * FROM bank_append_batch(jsonb_build_array(jsonb_build_object(
      'expected', jsonb_build_object(s, i - 1),
      'events', jsonb_build_array(jsonb_build_object('stream_id', s, 'event_id',
         gen_random_uuid(), 'type', 'MoneyDeposited',
         'payload', '{"amount": "1.00", "reference": null}'::jsonb,
         'metadata', '{}'::jsonb, 'schema_version', 2)),
      'transfers', '[]'::jsonb)));
  END LOOP;
END $$;
"""
SERVER_APPENDS = 2000


def _server_us(url: str) -> float:
    """Server time per one-event bank_append_batch() call, without commit or network: many calls
    in one DO block."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(_SERVER_LOOP % SERVER_APPENDS)
        return (time.perf_counter() - started) / SERVER_APPENDS * 1e6


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
        rounds = [(_server_us(plain_url), _server_us(chained_url)) for _ in range(ROUNDS)]
        plain_us = statistics.median(p for p, _ in rounds)
        chained_us = statistics.median(c for _, c in rounds)
        print(
            f"PostgreSQL bank_append_batch() server time per one-event append: plain "
            f"{plain_us:.1f} us, chained {chained_us:.1f} us (medians of {ROUNDS})"
        )
        _compare(
            "PostgreSQL EventStore.append",
            lambda: asyncio.run(_rate(plain_url, seconds)),
            lambda: asyncio.run(_rate(chained_url, seconds)),
        )
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _unchained(*_args: object) -> str:
    return "0" * 64


def _no_json(_value: object) -> str:
    return ""


def _sqlite(seconds: float) -> None:
    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bank.db'}"
    command.upgrade(alembic_config(url), "head")
    names = vars(sqlite_append)  # the writer hashes with the functions it imported: swap them

    def rate(chained: bool) -> float:
        names["event_hash"] = event_hash if chained else _unchained
        names["canonical_json"] = canonical_json if chained else _no_json
        try:
            return asyncio.run(_rate(url, seconds))
        finally:
            names["event_hash"], names["canonical_json"] = event_hash, canonical_json

    _compare("SQLite EventStore.append", lambda: rate(False), lambda: rate(True))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    _postgres(seconds)
    _sqlite(seconds)


if __name__ == "__main__":
    main()
