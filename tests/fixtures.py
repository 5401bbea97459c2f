"""Fixtures for tests that run the projectors or real processes, loaded with
`pytest_plugins = ["tests.fixtures"]` (tests/conftest.py keeps the ones every test needs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from kernel.settings import Settings
from tests.support import (
    env_for,
    read_side_settings,
    running_services,
)


@pytest.fixture
def settings(pg_url: str, redis_url: str, redis_prefix: str) -> Settings:
    return read_side_settings(pg_url, redis_url, redis_prefix)


@pytest.fixture
def worker_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """For in-process RQ workers: the job reads its settings from the environment, as in production."""
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    return settings


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Real `bank write-api`, `bank query-api` and `bank worker` processes on free ports."""
    with (
        running_services(settings, tmp_path) as (write_url, query_url),
        httpx.Client(base_url=write_url, timeout=10) as writes,
        httpx.Client(base_url=query_url, timeout=15) as queries,
    ):
        yield writes, queries
