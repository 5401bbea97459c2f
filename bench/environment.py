"""A private PostgreSQL database and Redis prefix per benchmark, removed afterwards.

The database is `bench_<random>`, migrated to head; every Redis key the benchmark (or the services
it starts) writes contains the prefix, so cleanup deletes by prefix and touches nothing else.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import redis

from bench.config import PG_ADMIN_URL, REDIS_URL
from kernel.settings import AuthSettings, RedisSettings, Settings, StoreSettings
from write_side.store.migrate import upgrade_to_head


@dataclass(frozen=True, slots=True)
class BenchEnv:
    database: str
    database_url: str
    redis_url: str
    prefix: str

    @property
    def queue(self) -> str:
        return f"{self.prefix}-projections"

    def settings(self) -> Settings:
        return Settings(
            store=StoreSettings(database_url=self.database_url),
            redis=RedisSettings(
                url=self.redis_url, configured=True, prefix=self.prefix, queue=self.queue
            ),
            auth=AuthSettings(enabled=False),
        )

    def process_env(self) -> dict[str, str]:
        """The environment of every service process a benchmark starts."""
        return dict(
            os.environ,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            REDIS_PREFIX=self.prefix,
            RQ_QUEUE=self.queue,
            BANK_AUTH="off",
            LOG_LEVEL="WARNING",
        )


def _database_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


def delete_keys_containing(client: redis.Redis, fragment: str) -> int:
    """Delete every key that contains `fragment` (a run's unique prefix), and its members of RQ's
    global `rq:queues` / `rq:workers` sets; returns how many keys were deleted."""
    for registry in ("rq:queues", "rq:workers"):
        ours = [m for m in client.smembers(registry) if fragment.encode() in _as_bytes(m)]
        if ours:
            client.srem(registry, *ours)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"*{fragment}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@contextmanager
def bench_environment() -> Iterator[BenchEnv]:
    suffix = uuid.uuid4().hex[:10]
    name = f"bench_{suffix}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = BenchEnv(name, _database_url(name), REDIS_URL, f"bench-{suffix}")
    try:
        upgrade_to_head(env.database_url)
        yield env
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            delete_keys_containing(client, env.prefix)
        finally:
            client.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
