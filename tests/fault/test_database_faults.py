"""The write API under database faults: connections killed mid-load, and a lost response retried.

Real PostgreSQL, a real `bank write-api` process, real HTTP. The store is the judge: every command
that was acknowledged with a 2xx must have exactly one event, whatever happened around it. Then a
worker projects the store, and the read models must equal a replay of it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from kernel.settings import Settings
from tests.fault.support import (
    DepositLoad,
    assert_each_acknowledged_command_stored_once,
    assert_projections_equal_a_replay,
    bank,
    events_by_idempotency_key,
    running,
    wait_for_projections,
)
from tests.support import wait_until

pytest_plugins = ["tests.fixtures"]  # settings (auth off, own queue), rdb

pytestmark = pytest.mark.fault

APPEND_LOCK_KEY = 727_001  # the store-wide append lock taken inside bank_append()
KILLS = 5


def _kill_connections(pg_url: str) -> int:
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def _project_and_check(settings: Settings, rdb: redis.Redis) -> None:
    """Drain the nudges the write API queued and catch up, then compare with a replay."""
    worker = bank(settings, "worker", "--burst")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    wait_for_projections(rdb, settings, timeout=5)
    assert_projections_equal_a_replay(rdb, settings)


def test_killed_connections_give_503_never_500_and_lose_no_acknowledged_command(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    with running(settings, tmp_path, query_api=False, worker=False) as stack:
        accounts = [f"acct-{n}" for n in range(8)]
        for account_id in accounts:
            response = httpx.post(
                f"{stack.write_url}/accounts", json={"owner": "F", "account_id": account_id}
            )
            assert response.status_code == 201

        killed = 0
        with DepositLoad(stack.write_url, accounts) as load:
            for n in range(KILLS):
                # Between kills, commands must get through again: the pool recovers each time.
                load.wait_for_more(20, f"commands to succeed again after kill {n}")
                killed += _kill_connections(settings.store.database_url)
            load.wait_for_more(20, "commands to succeed after the last kill")

        assert killed > 0, "the test must actually have killed connections"
        assert load.statuses[500] == 0, f"a killed connection gave a 500: {load.statuses}"
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert load.statuses[503] > 0, (
            f"killing connections should have failed some commands: {load.statuses}"
        )
        codes = Counter(code for _, code, _ in load.errors.elements())
        assert set(codes) <= {"store_unavailable", "outcome_unknown"}, load.errors
        # Killed mid-append, a command may have committed: the answer must not say otherwise.
        assert codes["outcome_unknown"] > 0, load.errors
        for _, code, detail in load.errors:
            if code == "outcome_unknown":
                assert "nothing was recorded" not in detail
                assert "same Idempotency-Key is safe" in detail
        assert_each_acknowledged_command_stored_once(settings.store.database_url, load.acknowledged)

    _project_and_check(settings, rdb)


def test_a_retry_after_a_lost_response_appends_exactly_one_event(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    with running(settings, tmp_path, query_api=False, worker=False) as stack:
        url = stack.write_url
        assert (
            httpx.post(f"{url}/accounts", json={"owner": "R", "account_id": "r"}).status_code == 201
        )
        key = "lost-response-1"
        # Hold the append lock so that the server's append waits; the client gives up first.
        blocker = psycopg.connect(settings.store.database_url, autocommit=True)
        blocker.execute("SELECT pg_advisory_lock(%s)", (APPEND_LOCK_KEY,))
        try:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(
                    f"{url}/accounts/r/deposit",
                    json={"amount": "5.00"},
                    headers={"Idempotency-Key": key},
                    timeout=0.5,
                )
        finally:
            blocker.execute("SELECT pg_advisory_unlock(%s)", (APPEND_LOCK_KEY,))
            blocker.close()
        # The server goes on and commits; the client's retry gets the same answer.
        wait_until(
            lambda: events_by_idempotency_key(settings.store.database_url)[key] == 1,
            timeout=10,
            what="the first commit",
        )
        retry = httpx.post(
            f"{url}/accounts/r/deposit", json={"amount": "5.00"}, headers={"Idempotency-Key": key}
        )
        assert retry.status_code == 200, retry.text
        assert retry.json()["balance"] == "5.00"
        assert retry.json()["version"] == 2
        assert events_by_idempotency_key(settings.store.database_url)[key] == 1
        events = httpx.get(f"{url}/accounts/r/events").json()["events"]
        assert [e["type"] for e in events] == ["AccountOpened", "MoneyDeposited"]

    _project_and_check(settings, rdb)
