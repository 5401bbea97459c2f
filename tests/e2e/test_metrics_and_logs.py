"""`/metrics` and the request logs of real `bank` processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kernel.settings import Settings
from tests.support import free_port, start_bank, stop, wait_until

pytest_plugins = ["tests.fixtures"]


def samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = client.get("/metrics")
    assert reply.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANK_LOG_FORMAT", "json")


def test_metrics_parse_and_their_counters_move_with_the_traffic(
    json_logs: None, services: tuple[httpx.Client, httpx.Client]
) -> None:
    writes, queries = services
    before = samples(writes)
    assert (
        writes.post("/accounts", json={"owner": "m", "account_id": "metric-a"}).status_code == 201
    )
    for _ in range(3):
        writes.post("/accounts/metric-a/deposit", json={"amount": "1.00"})
    writes.post("/accounts/metric-a/withdraw", json={"amount": "99.00"})

    after = samples(writes)
    ok = {"command": "deposit", "outcome": "ok"}
    assert (
        value(after, "bank_commands_total", **ok) - value(before, "bank_commands_total", **ok) == 3
    )
    refused = {"command": "withdraw", "outcome": "insufficient_funds"}
    assert value(after, "bank_commands_total", **refused) == 1
    route = {"api": "write", "route": "/accounts/{account_id}/deposit", "method": "POST"}
    assert value(after, "bank_http_requests_total", **route, status="200") == 3
    assert (
        value(after, "bank_append_batch_size_sum") == 4
    )  # the refused withdrawal appended nothing

    def projected() -> bool:
        found = samples(queries)
        return value(found, "bank_worker_events_projected_total", projection="balances") >= 4

    wait_until(projected, 30, "the worker's figures to reach the query API's /metrics")
    found = samples(queries)
    assert ("bank_projection_lag", frozenset({("projection", "balances")})) in found
    assert value(found, "bank_worker_catch_up_runs_total") >= 1


def test_every_log_line_is_one_json_object_with_the_request_id(
    json_logs: None, services: tuple[httpx.Client, httpx.Client], tmp_path: Path
) -> None:
    writes, _ = services
    reply = writes.get("/health", headers={"X-Request-ID": "trace-me-42"})
    fresh = writes.get("/nowhere")

    assert reply.headers["X-Request-ID"] == "trace-me-42"
    generated = fresh.headers["X-Request-ID"]
    assert generated

    def logged() -> list[dict[str, object]]:
        lines = (tmp_path / "write-api.log").read_text().splitlines()
        records = [line for line in lines if not line.startswith("write API on ")]
        return [json.loads(line) for line in records]

    wait_until(lambda: any(r.get("request_id") == generated for r in logged()), 10, "the log")
    ids = {r.get("request_id") for r in logged()}
    assert {"trace-me-42", generated} <= ids


@pytest.fixture
def two_worker_api(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start_bank(
        ["write-api", "--port", str(port), "--workers", "2"], settings, tmp_path / "w.log"
    )
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(serving, 30, "the two-worker write API")
        yield url
    finally:
        stop(process)


def test_a_server_with_two_workers_reports_the_totals_of_both(two_worker_api: str) -> None:
    requests = 40
    for _ in range(requests):  # a new connection each time: the workers share them out
        assert httpx.get(f"{two_worker_api}/health", timeout=5).status_code == 200
    health = {"api": "write", "route": "/health", "method": "GET", "status": "200"}
    for _ in range(6):  # each scrape may be answered by either worker: all must agree
        with httpx.Client(base_url=two_worker_api) as client:
            found = samples(client)
        assert value(found, "bank_http_requests_total", **health) >= requests
