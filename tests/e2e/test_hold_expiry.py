"""Holds expire on time in the normal deployment: real `bank write-api`, `bank worker` and
`bank query-api` processes; the worker's expiry loop appends one HoldExpired per side, the query
API then shows the hold expired and the money available again."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

from kernel.settings import Settings
from tests.support import wait_until

pytest_plugins = ["tests.fixtures"]  # settings, services


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def resolutions(database_url: str) -> Counter[tuple[str, str, str]]:
    """(hold id, account, event type) of every hold resolution in the store."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload->>'hold_id', stream_id, type FROM events "
            "WHERE type IN ('HoldCaptured', 'HoldVoided', 'HoldExpired')"
        ).fetchall()
    return Counter((str(hold), str(stream), str(kind)) for hold, stream, kind in rows)


def expiry_authors(database_url: str) -> Counter[tuple[str, str, str, str]]:
    """(hold id, account, metadata `command`, metadata `actor`) of every HoldExpired in the store:
    who the store says appended each expiry."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT payload->>'hold_id', stream_id, metadata->>'command', metadata->>'actor' "
            "FROM events WHERE type = 'HoldExpired'"
        ).fetchall()
    return Counter((str(h), str(s), str(c), str(a)) for h, s, c, a in rows)


def test_the_worker_expires_due_holds_once_and_leaves_the_others_pending(
    services: tuple[httpx.Client, httpx.Client], settings: Settings
) -> None:
    writes, queries = services
    for account_id in ("alice", "bob"):
        _ok(writes.post("/accounts", json={"owner": "Ada", "account_id": account_id}))
    _ok(writes.post("/accounts/alice/deposit", json={"amount": "100.00"}))
    hold = {"from_account": "alice", "to_account": "bob", "amount": "30.00"}
    soon = _ok(writes.post("/holds", json={**hold, "hold_id": "soon", "expires_in_s": 1}))
    _ok(writes.post("/holds", json={**hold, "hold_id": "later", "expires_in_s": 3600}))
    database_url = settings.store.database_url

    wait_until(lambda: bool(resolutions(database_url)), 15, "the worker to expire the hold")
    wait_until(lambda: datetime.now(UTC) > datetime.fromisoformat(soon["expires_at"]), 5, "after")

    assert resolutions(database_url) == {
        ("soon", "alice", "HoldExpired"): 1,
        ("soon", "bob", "HoldExpired"): 1,
    }
    assert expiry_authors(database_url) == {  # the system's expiry, not a client's command
        ("soon", "alice", "ExpireHold", "system"): 1,
        ("soon", "bob", "ExpireHold", "system"): 1,
    }
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT max(position) FROM events WHERE type = 'HoldExpired'").fetchone()
    position = int(row[0]) if row else 0
    expired = _ok(queries.get("/holds/soon", params={"min_position": position}))
    balance = _ok(queries.get("/accounts/alice/balance", params={"min_position": position}))
    pending = _ok(queries.get("/accounts/alice/holds", params={"status": "pending"}))
    assert expired["status"] == "expired"
    assert (balance["balance"], balance["held"], balance["available"]) == (
        "100.00",
        "30.00",
        "70.00",
    )
    assert [h["hold_id"] for h in pending["holds"]] == ["later"]
    refused = writes.post("/holds/soon/capture")
    assert (refused.status_code, refused.json()["status"]) == (409, "expired")
