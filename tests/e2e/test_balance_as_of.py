"""Balances as of an instant and statements by time range, end to end: commands over HTTP to a real
`bank write-api`, projected by a real `bank worker`, read back from a real `bank query-api`.

The instants asked about are the ones the statement itself reports (`recorded_at`), so the test
needs no clock of its own: at an entry's instant the balance is that entry's `balance_after`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import httpx

pytest_plugins = ["tests.fixtures"]  # services

MICRO = timedelta(microseconds=1)


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _shifted(text: str, by: timedelta) -> str:
    return (datetime.fromisoformat(text) + by).isoformat()


def test_balance_as_of_each_recorded_instant_and_statement_between_instants_over_http(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    _ok(writes.post("/accounts", json={"owner": "Ada", "account_id": "asof-1"}))
    for amount in ("10.00", "2.50", "7.25"):
        time.sleep(0.002)
        _ok(writes.post("/accounts/asof-1/deposit", json={"amount": amount}))
    last = _ok(writes.post("/accounts/asof-1/withdraw", json={"amount": "1.00"}))["position"]
    balance_url, statement_url = "/accounts/asof-1/balance", "/accounts/asof-1/statement"
    entries = _ok(queries.get(statement_url, params={"min_position": last}))["entries"]
    assert [e["balance_after"] for e in entries] == ["18.75", "19.75", "12.50", "10.00", "0.00"]

    for entry in entries:
        asked = {"as_of": entry["recorded_at"], "min_position": last}
        then = _ok(queries.get(balance_url, params=asked))
        assert (then["balance"], then["version"]) == (entry["balance_after"], entry["version"])
        assert then["as_of"] == datetime.fromisoformat(entry["recorded_at"]).isoformat(
            timespec="microseconds"
        )
        assert then["owner"] == "Ada"
    opened_at = entries[-1]["recorded_at"]
    before_opening = queries.get(balance_url, params={"as_of": _shifted(opened_at, -MICRO)})
    assert before_opening.status_code == 404
    assert before_opening.json()["error"] == "account_not_found"

    between = queries.get(
        statement_url, params={"from": entries[3]["recorded_at"], "to": entries[1]["recorded_at"]}
    )
    assert [e["version"] for e in _ok(between)["entries"]] == [4, 3, 2]
    after_all = queries.get(
        statement_url, params={"from": _shifted(entries[0]["recorded_at"], MICRO)}
    )
    assert _ok(after_all)["entries"] == []


def test_as_of_waits_for_min_position_then_answers_for_the_instant(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    _ok(writes.post("/accounts", json={"owner": "Bo", "account_id": "asof-2"}))
    done = _ok(writes.post("/accounts/asof-2/deposit", json={"amount": "3.00"}))

    read = _ok(
        queries.get(
            "/accounts/asof-2/balance",
            params={"as_of": "2999-01-01T00:00:00Z", "min_position": done["position"]},
        )
    )

    assert (read["balance"], read["position"]) == ("3.00", done["position"])
    # An unencoded `+` in a URL arrives as a space; it is read as the offset's sign.
    raw = _ok(queries.get("/accounts/asof-2/balance?as_of=2999-01-01T00:00:00+01:00"))
    assert (raw["balance"], raw["as_of"]) == ("3.00", "2998-12-31T23:00:00.000000+00:00")


def test_malformed_or_zoneless_timestamps_and_backwards_ranges_are_400_validation_error(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    _ok(writes.post("/accounts", json={"owner": "Cy", "account_id": "asof-3"}))
    bad = [
        ("/accounts/asof-3/balance", {"as_of": "2026-01-31T09:30:00"}, "no time zone"),
        ("/accounts/asof-3/balance", {"as_of": "last tuesday"}, "RFC 3339"),
        ("/accounts/asof-3/balance", {"as_of": "2026-02-30T00:00:00Z"}, "not a valid instant"),
        ("/accounts/asof-3/statement", {"from": "2026-01-31"}, "RFC 3339"),
        ("/accounts/asof-3/statement", {"to": "2026-01-31T09:30:00.5"}, "no time zone"),
        (
            "/accounts/asof-3/statement",
            {"from": "2026-01-31T10:00:00Z", "to": "2026-01-31T09:00:00Z"},
            "is after to",
        ),
    ]
    for path, params, says in bad:
        response = queries.get(path, params=params)

        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"] == "validation_error"
        assert says in response.json()["detail"], (params, response.json())
