"""A hold whose deadline passes while no worker runs expires once the worker is back: the worker
is SIGKILLed before the deadline and started again after it; exactly one HoldExpired per side.

Real PostgreSQL and Redis, real `bank write-api`, `bank query-api` and `bank worker` processes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.settings import Settings
from tests.e2e.test_hold_expiry import expiry_authors, resolutions
from tests.fault.support import kill, running
from tests.support import start_bank, stop, wait_until

pytest_plugins = ["tests.fixtures"]

pytestmark = pytest.mark.fault

EXPIRES_IN_S = 3


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def status(queries: httpx.Client) -> str | None:
    response = queries.get("/holds/h-1")
    return str(response.json()["status"]) if response.status_code == 200 else None


def test_a_deadline_missed_while_the_worker_was_killed_expires_the_hold_once_on_restart(
    settings: Settings, tmp_path: Path
) -> None:
    database_url = settings.store.database_url
    with running(settings, tmp_path, query_api=True, worker=False) as stack:
        worker = start_bank(["worker"], settings, tmp_path / "worker-1.log")
        try:
            with (
                httpx.Client(base_url=stack.write_url, timeout=10) as writes,
                httpx.Client(base_url=stack.query_url, timeout=15) as queries,
            ):
                for account_id in ("alice", "bob"):
                    _ok(writes.post("/accounts", json={"owner": "Ada", "account_id": account_id}))
                _ok(writes.post("/accounts/alice/deposit", json={"amount": "50.00"}))
                body = {"from_account": "alice", "to_account": "bob", "amount": "20.00"}
                placed = _ok(
                    writes.post(
                        "/holds", json={**body, "hold_id": "h-1", "expires_in_s": EXPIRES_IN_S}
                    )
                )
                # The worker projects the hold (so the due set holds it), then dies before the
                # deadline.
                wait_until(lambda: status(queries) == "pending", 20, "the hold to be projected")
                kill(worker)
                deadline = datetime.fromisoformat(placed["expires_at"])
                assert datetime.now(UTC) < deadline, "the worker must die before the deadline"

                wait_until(lambda: datetime.now(UTC) > deadline, EXPIRES_IN_S + 5, "the deadline")
                assert resolutions(database_url) == {}  # nobody expired it meanwhile

                worker = start_bank(["worker"], settings, tmp_path / "worker-2.log")
                wait_until(lambda: bool(resolutions(database_url)), 30, "the expiry on restart")
                # The killed worker's runner lock lapses within LOCK_TTL_S; then it is projected.
                wait_until(lambda: status(queries) == "expired", 30, "the expiry to be projected")
        finally:
            stop(worker)

    assert resolutions(database_url) == {
        ("h-1", "alice", "HoldExpired"): 1,
        ("h-1", "bob", "HoldExpired"): 1,
    }
    assert expiry_authors(database_url) == {
        ("h-1", "alice", "ExpireHold", "system"): 1,
        ("h-1", "bob", "ExpireHold", "system"): 1,
    }
