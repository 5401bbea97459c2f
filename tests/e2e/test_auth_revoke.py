"""A revoke with real processes: `bank write-api`, `bank query-api` and `bank worker` running, and
`bank apikey revoke` run beside them; both APIs must refuse the key within a second."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernel.settings import Settings
from tests.support import (
    BANK,
    env_for,
    read_side_settings,
    running_services,
)

REVOKE_DEADLINE_S = 1.5
"""The issue promises 1 s; the margin is for a loaded 2-core test machine, not for the design."""


@pytest.fixture
def auth_settings(pg_url: str, redis_url: str, redis_prefix: str) -> Settings:
    return read_side_settings(pg_url, redis_url, redis_prefix, auth_enabled=True)


@pytest.fixture
def apis(auth_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Real write API, query API and worker with auth on; yields the two API URLs."""
    with running_services(auth_settings, tmp_path) as urls:
        yield urls


def _apikey(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [*BANK, "apikey", *args], env=env_for(settings), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_revoked_key_is_refused_by_both_running_apis_within_a_second(
    auth_settings: Settings, apis: tuple[str, str]
) -> None:
    write_url, query_url = apis
    token = _apikey(
        auth_settings, "create", "--name", "leaky", "--scope", "write", "--scope", "read"
    )
    bearer = {"Authorization": f"Bearer {token}"}
    write_read = f"{write_url}/accounts/nobody/events"  # also puts the key in the write API's cache
    query_read = f"{query_url}/summary"
    for url in (write_read, query_read):
        assert httpx.get(url, headers=bearer).status_code != 401, url

    _apikey(auth_settings, "revoke", "leaky")
    revoked_at = time.monotonic()

    refused: dict[str, float] = {}
    while len(refused) < 2 and time.monotonic() - revoked_at < REVOKE_DEADLINE_S:
        for url in (write_read, query_read):
            if url not in refused and httpx.get(url, headers=bearer).status_code == 401:
                refused[url] = time.monotonic() - revoked_at
    assert set(refused) == {write_read, query_read}, (
        f"still accepted {REVOKE_DEADLINE_S} s after the revoke: "
        f"{sorted({write_read, query_read} - set(refused))}"
    )
