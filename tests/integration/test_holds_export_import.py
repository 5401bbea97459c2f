"""Holds survive `bank export` / `bank import`: each hold's claim rides on its HoldPlaced line and
its resolution's on the resolving event's line, so the imported store still knows every hold id:
a pending hold can be captured there, a resolved one answers its status, a retry its first answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.audit_support import bank
from tests.integration.test_export_import import _transfers
from tests.integration.write_api_client import assert_error, write_api

HOLD = {"from_account": "alice", "to_account": "bob", "amount": "10.00"}


async def post(client: AsyncTestClient[Litestar], path: str, body: Any = None) -> dict[str, Any]:
    response = await client.post(path, json=body) if body else await client.post(path)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_pending_and_resolved_holds_move_with_an_export_and_import(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    async with write_api(sqlite_url) as client:
        for account_id in ("alice", "bob"):
            await post(client, "/accounts", {"owner": "Ada", "account_id": account_id})
        await post(client, "/accounts/alice/deposit", {"amount": "100.00"})
        pending = await post(client, "/holds", {**HOLD, "hold_id": "pending"})
        for hold_id in ("captured", "voided"):
            await post(client, "/holds", {**HOLD, "hold_id": hold_id})
        await post(client, "/holds/captured/capture", {"amount": "4.00"})
        await post(client, "/holds/voided/void")
    exported, again = tmp_path / "holds.jsonl", tmp_path / "again.jsonl"

    assert bank(sqlite_url, "export", str(exported)).returncode == 0
    imported = bank(pg_url, "import", str(exported))
    assert imported.returncode == 0, imported.stderr
    assert bank(pg_url, "export", str(again)).returncode == 0

    assert exported.read_bytes() == again.read_bytes()
    assert _transfers(sqlite_url) == _transfers(pg_url)
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert [
        (line["type"], line["transfer"]["transfer_id"]) for line in lines if "transfer" in line
    ] == [
        ("HoldPlaced", "pending"),
        ("HoldPlaced", "captured"),
        ("HoldPlaced", "voided"),
        ("HoldCaptured", "captured.resolution"),
        ("HoldVoided", "voided.resolution"),
    ]
    async with write_api(pg_url) as client:
        retry = await post(client, "/holds", {**HOLD, "hold_id": "pending"})
        captured_again = await client.post("/holds/captured/capture")
        voided_again = await client.post("/holds/voided/void")
        taken = await client.post("/holds", json={**HOLD, "hold_id": "voided", "amount": "1.00"})
        capture = await post(client, "/holds/pending/capture")

    assert retry == pending
    assert_error(captured_again, 409, "hold_not_pending")
    assert captured_again.json()["status"] == "captured"
    assert voided_again.json()["status"] == "voided"
    assert_error(taken, 409, "hold_exists")
    assert (capture["status"], capture["from"]["balance"], capture["from"]["held"]) == (
        "captured",
        "86.00",
        "0.00",
    )
