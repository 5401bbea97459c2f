"""Fixtures of the read side's tests, loaded with `pytest_plugins = ["tests.read_side_fixtures"]`
(tests/conftest.py is shared, so they live here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from app.settings import Settings
from tests.read_side_support import env_for, forget_rq_registrations, read_side_settings


@pytest.fixture
def settings(pg_url: str, redis_url: str, redis_prefix: str) -> Iterator[Settings]:
    yield read_side_settings(pg_url, redis_url, redis_prefix)
    forget_rq_registrations(redis_url, redis_prefix)


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
