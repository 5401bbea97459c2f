"""Fixtures for tests that run the projectors or real processes, loaded with
`pytest_plugins = ["tests.fixtures"]` (tests/conftest.py keeps the ones every test needs)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from kernel.settings import Settings
from tests.support import (
    env_for,
    free_port,
    read_side_settings,
    start_bank,
    stop,
    wait_until,
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


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def services(settings: Settings, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Real `bank write-api`, `bank query-api` and `bank worker` processes on free ports."""
    write_port, query_port = free_port(), free_port()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for args in (
            ["write-api", "--port", str(write_port)],
            ["query-api", "--port", str(query_port)],
            ["worker"],
        ):
            processes.append(start_bank(args, settings, tmp_path / f"{args[0]}.log"))
        write_url, query_url = f"http://127.0.0.1:{write_port}", f"http://127.0.0.1:{query_port}"
        for url in (write_url, query_url):
            wait_until(lambda url=url: _answers(f"{url}/health"), 30, f"{url} to answer")
        with (
            httpx.Client(base_url=write_url, timeout=10) as writes,
            httpx.Client(base_url=query_url, timeout=15) as queries,
        ):
            yield writes, queries
    finally:
        for process in processes:
            stop(process)
