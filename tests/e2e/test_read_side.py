"""End to end with real processes: `bank write-api`, `bank worker` and `bank query-api` on free ports.

Commands go in over HTTP; balances and statements come back out of the query API and must match a
model of the account computed here, `balance_after` on every entry included.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import httpx

pytest_plugins = ["tests.fixtures"]  # settings, worker_env, rdb, services


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def test_commands_over_http_are_read_back_through_the_query_api_matching_a_model(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    rng = random.Random(11)
    model: dict[str, list[tuple[str, Decimal]]] = {}
    last_position = 0
    for n in range(6):
        account_id = f"e2e-{n}"
        opened = _ok(writes.post("/accounts", json={"owner": f"o{n}", "account_id": account_id}))
        model[account_id] = [("AccountOpened", Decimal(0))]
        last_position = opened["position"]
    for _ in range(120):
        account_id = rng.choice(sorted(model))
        balance = sum(amount for _, amount in model[account_id])
        amount = Decimal(rng.randint(1, 20_000)) / 100
        if balance >= amount and rng.random() < 0.4:
            done = _ok(
                writes.post(f"/accounts/{account_id}/withdraw", json={"amount": str(amount)})
            )
            model[account_id].append(("MoneyWithdrawn", -amount))
        else:
            done = _ok(writes.post(f"/accounts/{account_id}/deposit", json={"amount": str(amount)}))
            model[account_id].append(("MoneyDeposited", amount))
        last_position = done["position"]
        # Read-your-writes: the answer includes the command that just returned.
        read = _ok(
            queries.get(
                f"/accounts/{account_id}/balance", params={"min_position": done["position"]}
            )
        )
        assert read["balance"] == done["balance"]
    remaining = sum(amount for _, amount in model["e2e-0"])
    if remaining:
        _ok(writes.post("/accounts/e2e-0/withdraw", json={"amount": f"{remaining:.2f}"}))
        model["e2e-0"].append(("MoneyWithdrawn", -remaining))
    closed = _ok(writes.post("/accounts/e2e-0/close"))
    model["e2e-0"].append(("AccountClosed", Decimal(0)))
    last_position = closed["position"]

    for account_id, history in model.items():
        fresh = {"min_position": last_position}
        answer = _ok(queries.get(f"/accounts/{account_id}/balance", params=fresh))
        statement = _ok(
            queries.get(f"/accounts/{account_id}/statement", params={**fresh, "limit": 500})
        )
        running, expected_entries = Decimal(0), []
        for version, (kind, amount) in enumerate(history, start=1):
            running += amount
            expected_entries.append((version, kind, f"{amount:.2f}", f"{running:.2f}"))
        expected_entries.reverse()
        got = [
            (e["version"], e["type"], e["amount"], e["balance_after"]) for e in statement["entries"]
        ]
        assert got == expected_entries, account_id
        assert statement["next_before_version"] is None
        assert answer["balance"] == f"{running:.2f}"
        assert answer["version"] == len(history)
        assert answer["status"] == ("closed" if account_id == "e2e-0" else "open")

    summary = _ok(queries.get("/summary"))
    assert summary["accounts"] == 6
    assert summary["open_accounts"] == 5
    assert summary["events_projected"] == sum(len(h) for h in model.values())
    total = sum(sum(amount for _, amount in h) for h in model.values())
    assert summary["balances_by_currency"] == {"USD": f"{total:.2f}"}
