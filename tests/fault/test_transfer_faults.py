"""A transfer's two sides are one transaction: database connections killed under a transfer load
leave no half transfer in the store, and lose no acknowledged one.

Real PostgreSQL, a real `bank write-api` process, real HTTP, as in test_database_faults.py.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from kernel.settings import Settings
from tests.fault.support import (
    assert_projections_equal_a_replay,
    bank,
    running,
    wait_for_projections,
)
from tests.fault.test_database_faults import _kill_connections
from tests.support import wait_until

pytest_plugins = ["tests.fixtures"]

pytestmark = pytest.mark.fault

ACCOUNTS = [f"ring-{n}" for n in range(6)]
KILLS = 5


class TransferLoad:
    """One thread per account, sending 1.00 to the next account in the ring until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.acknowledged: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(source, ACCOUNTS[(n + 1) % len(ACCOUNTS)]))
            for n, source in enumerate(ACCOUNTS)
        ]

    def _run(self, source: str, target: str) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                transfer_id = f"f-{uuid.uuid4().hex[:20]}"
                body = {"from_account": source, "to_account": target, "amount": "1.00"}
                try:
                    status = client.post(
                        "/transfers", json={**body, "transfer_id": transfer_id}
                    ).status_code
                except httpx.TransportError:
                    status = 0
                with self.lock:
                    self.statuses[status] += 1
                    if status == 201:
                        self.acknowledged.append(transfer_id)

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for_more(self, transfers: int, what: str) -> None:
        target = self.count() + transfers
        wait_until(lambda: self.count() >= target, 20, what)


def _transfer_sides(database_url: str) -> dict[str, list[str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload->>'transfer_id', type FROM events "
            "WHERE type IN ('TransferSent', 'TransferReceived')"
        ).fetchall()
    sides: dict[str, list[str]] = defaultdict(list)
    for transfer_id, kind in rows:
        sides[transfer_id].append(kind)
    return sides


def _total_balance(database_url: str) -> Decimal:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT type, payload->>'amount' FROM events").fetchall()
    sign = {"MoneyDeposited": 1, "MoneyWithdrawn": -1, "TransferSent": -1, "TransferReceived": 1}
    return sum((sign.get(kind, 0) * Decimal(amount or 0) for kind, amount in rows), Decimal(0))


def test_killed_connections_never_leave_half_a_transfer_nor_lose_an_acknowledged_one(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    with running(settings, tmp_path, query_api=False, worker=False) as stack:
        for account_id in ACCOUNTS:
            opened = httpx.post(
                f"{stack.write_url}/accounts", json={"owner": "F", "account_id": account_id}
            )
            assert opened.status_code == 201
            funded = httpx.post(
                f"{stack.write_url}/accounts/{account_id}/deposit", json={"amount": "1000.00"}
            )
            assert funded.status_code == 200
        load = TransferLoad(stack.write_url)
        for thread in load.threads:
            thread.start()
        try:
            killed = 0
            for n in range(KILLS):
                load.wait_for_more(20, f"transfers to succeed again after kill {n}")
                killed += _kill_connections(settings.store.database_url)
            load.wait_for_more(20, "transfers to succeed after the last kill")
        finally:
            load.stop.set()
            for thread in load.threads:
                thread.join(timeout=30)

    assert killed > 0
    assert load.statuses[500] == 0, load.statuses
    assert set(load.statuses) <= {201, 503}, load.statuses
    sides = _transfer_sides(settings.store.database_url)
    halves = {
        t: kinds
        for t, kinds in sides.items()
        if sorted(kinds) != ["TransferReceived", "TransferSent"]
    }
    assert not halves, f"half (or doubled) transfers in the store: {halves}"
    missing = [t for t in load.acknowledged if t not in sides]
    assert not missing, f"{len(missing)} acknowledged transfers are not in the store"
    assert _total_balance(settings.store.database_url) == Decimal("6000.00")

    worker = bank(settings, "worker", "--burst")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    wait_for_projections(rdb, settings, timeout=10)
    assert_projections_equal_a_replay(rdb, settings)
