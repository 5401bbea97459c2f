"""The write API under database faults: connections killed mid-load, and a lost response retried.

Real PostgreSQL, a real `bank write-api` process, real HTTP. The store is the judge: every command
that was acknowledged with a 2xx must have exactly one event, whatever happened around it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from app.settings import Settings
from tests.read_side_support import free_port, start_bank, stop, wait_until

pytestmark = pytest.mark.fault

APPEND_LOCK_KEY = 727_001  # the store-wide append lock taken inside bank_append()


def _write_api(pg_url: str, redis_url: str, prefix: str, log: Path) -> tuple[str, object]:
    port = free_port()
    settings = Settings(
        database_url=pg_url, redis_url=redis_url, redis_prefix=prefix, auth_enabled=False
    )
    process = start_bank(["write-api", "--port", str(port)], settings, log)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, timeout=30, what="the write API to start")
    return url, process


def _kill_connections(pg_url: str) -> int:
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def _events_by_key(pg_url: str) -> Counter[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT metadata->>'idempotency_key' FROM events WHERE metadata ? 'idempotency_key'"
        ).fetchall()
    return Counter(row[0] for row in rows)


def test_killed_connections_give_503_never_500_and_lose_no_acknowledged_command(
    pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    url, process = _write_api(pg_url, redis_url, redis_prefix, tmp_path / "write-api.log")
    try:
        accounts = [f"acct-{n}" for n in range(8)]
        for account_id in accounts:
            response = httpx.post(f"{url}/accounts", json={"owner": "F", "account_id": account_id})
            assert response.status_code == 201

        acknowledged: list[str] = []
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        stop_load = threading.Event()

        def load(account_id: str) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                while not stop_load.is_set():
                    key = uuid.uuid4().hex
                    try:
                        response = client.post(
                            f"/accounts/{account_id}/deposit",
                            json={"amount": "1.00"},
                            headers={"Idempotency-Key": key},
                        )
                    except httpx.TransportError:
                        continue
                    with lock:
                        statuses[response.status_code] += 1
                        if 200 <= response.status_code < 300:
                            acknowledged.append(key)

        threads = [threading.Thread(target=load, args=(a,)) for a in accounts]
        for thread in threads:
            thread.start()
        killed = 0
        for _ in range(6):
            time.sleep(0.4)
            killed += _kill_connections(pg_url)
        time.sleep(0.5)
        stop_load.set()
        for thread in threads:
            thread.join(timeout=30)

        assert killed > 0, "the test must actually have killed connections"
        assert statuses[500] == 0, f"a killed connection gave a 500: {statuses}"
        assert set(statuses) <= {200, 503}, statuses
        assert statuses[503] > 0, (
            f"killing connections should have failed some commands: {statuses}"
        )
        # After the faults, commands succeed again.
        after = httpx.post(f"{url}/accounts/acct-0/deposit", json={"amount": "1.00"})
        assert after.status_code == 200, after.text
        # Every acknowledged command has exactly one event.
        stored = _events_by_key(pg_url)
        assert all(stored[key] == 1 for key in acknowledged)
        assert max(stored.values()) == 1
    finally:
        stop(process)  # type: ignore[arg-type]


def test_a_retry_after_a_lost_response_appends_exactly_one_event(
    pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    url, process = _write_api(pg_url, redis_url, redis_prefix, tmp_path / "write-api.log")
    try:
        assert (
            httpx.post(f"{url}/accounts", json={"owner": "R", "account_id": "r"}).status_code == 201
        )
        key = "lost-response-1"
        # Hold the append lock so that the server's append waits; the client gives up first.
        blocker = psycopg.connect(pg_url, autocommit=True)
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
        wait_until(lambda: _events_by_key(pg_url)[key] == 1, timeout=10, what="the first commit")
        retry = httpx.post(
            f"{url}/accounts/r/deposit", json={"amount": "5.00"}, headers={"Idempotency-Key": key}
        )
        assert retry.status_code == 200, retry.text
        assert retry.json()["balance"] == "5.00"
        assert retry.json()["version"] == 2
        assert _events_by_key(pg_url)[key] == 1
        events = httpx.get(f"{url}/accounts/r/events").json()["events"]
        assert [e["type"] for e in events] == ["AccountOpened", "MoneyDeposited"]
    finally:
        stop(process)  # type: ignore[arg-type]
