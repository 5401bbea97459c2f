"""Shared fixtures: every test gets its own PostgreSQL database / SQLite file and its own Redis prefix.

Nothing here touches data a test did not create: databases are created with unique names and
dropped afterwards; Redis keys all start with a unique prefix and are deleted by prefix.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from bench.environment import delete_keys_containing
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.migrate import upgrade_to_head

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _pg_url_for(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def create_pg_database(template: str | None = None) -> tuple[str, str]:
    """A new, empty database (or a copy of `template`) with a unique name."""
    name = f"bank_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return name, _pg_url_for(name)


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_pg_template() -> Iterator[str]:
    """One migrated database per test run; each test's database is a copy of it (much faster than
    migrating every time). The migrations themselves are tested on empty databases."""
    name, url = create_pg_database()
    try:
        upgrade_to_head(url)
        yield name
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_url(migrated_pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    name, url = create_pg_database(template=migrated_pg_template)
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "bank.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite_template: Path) -> str:
    """A fresh, migrated SQLite file (a copy of one migrated once) in the test's own folder."""
    path = tmp_path / "bank.db"
    shutil.copyfile(migrated_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once per supported backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[EventStore]:
    engine = create_async_store_engine(store_url)
    try:
        yield EventStore(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[EventStore]:
    engine = create_async_store_engine(pg_url, pool_size=20)
    try:
        yield EventStore(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix; every key containing it is deleted after the test."""
    prefix = f"banktest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        delete_keys_containing(client, prefix)  # RQ's queue and worker registrations too
    finally:
        client.close()


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL
