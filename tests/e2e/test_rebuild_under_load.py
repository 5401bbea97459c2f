"""`bank projections rebuild --all` while commands keep arriving and dashboards keep polling.

Every poll must answer 200 with a balance consistent with its version (never a 404, a 5xx or a
half-built model), and afterwards the read models must equal a replay of the store.
"""

from __future__ import annotations

import subprocess
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import redis

from kernel.settings import Settings
from tests.support import BANK, env_for, projected, replay, wait_until, write_traffic

pytest_plugins = ["tests.fixtures"]  # settings, rdb, services

DEPOSIT = Decimal("1.00")
ACCOUNTS = [f"live-{n}" for n in range(4)]


def _caught_up(queries: httpx.Client, position: int) -> bool:
    statuses = queries.get("/projections").json()
    return all(status["checkpoint"] >= position for status in statuses)


def test_rebuild_under_traffic_keeps_every_read_consistent_and_ends_equal_to_a_replay(
    services: tuple[httpx.Client, httpx.Client],
    settings: Settings,
    rdb: redis.Redis,
    tmp_path: Path,
) -> None:
    writes, queries = services
    # History to replay: enough that the rebuild takes a while.
    write_traffic(settings.store.database_url, accounts=60, events_per_account=80)
    for account_id in ACCOUNTS:
        assert (
            writes.post("/accounts", json={"owner": "L", "account_id": account_id}).status_code
            == 201
        )
    head = writes.post(f"/accounts/{ACCOUNTS[0]}/deposit", json={"amount": "1.00"}).json()
    wait_until(lambda: _caught_up(queries, head["position"]), 60, "the projections to catch up")

    stop_traffic = threading.Event()
    problems: list[str] = []
    polls = [0]

    def traffic() -> None:
        with httpx.Client(base_url=writes.base_url, timeout=10) as client:
            n = 0
            while not stop_traffic.is_set():
                account_id = ACCOUNTS[n % len(ACCOUNTS)]
                response = client.post(f"/accounts/{account_id}/deposit", json={"amount": "1.00"})
                if response.status_code != 200:
                    problems.append(f"command answered {response.status_code}: {response.text}")
                n += 1

    def dashboard() -> None:
        with httpx.Client(base_url=queries.base_url, timeout=10) as client:
            while not stop_traffic.is_set():
                for account_id in ACCOUNTS:
                    response = client.get(f"/accounts/{account_id}/balance")
                    polls[0] += 1
                    if response.status_code != 200:
                        problems.append(f"poll answered {response.status_code}: {response.text}")
                        continue
                    body = response.json()
                    # Deposits only: the balance a version implies is exact.
                    expected = DEPOSIT * (body["version"] - 1)
                    if Decimal(body["balance"]) != expected:
                        problems.append(f"inconsistent balance {body}")
                summary = client.get("/summary")
                if summary.status_code != 200:
                    problems.append(f"summary answered {summary.status_code}")

    threads = [threading.Thread(target=traffic), threading.Thread(target=dashboard)]
    for thread in threads:
        thread.start()
    try:
        rebuild = subprocess.run(
            [*BANK, "projections", "rebuild", "--all", "--batch-size", "200"],
            env=env_for(settings),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        stop_traffic.set()
        for thread in threads:
            thread.join(timeout=30)

    assert rebuild.returncode == 0, rebuild.stderr
    assert "balances: rebuilt" in rebuild.stdout
    assert "statements: rebuilt" in rebuild.stdout
    assert "events/s" in rebuild.stderr, "plain progress lines when not on a terminal"
    assert problems == []
    assert polls[0] > 0
    # Afterwards: caught up, and equal to a replay of the store, nothing lost or doubled.
    final = writes.post(f"/accounts/{ACCOUNTS[0]}/deposit", json={"amount": "1.00"}).json()
    wait_until(lambda: _caught_up(queries, final["position"]), 60, "the projections to catch up")
    assert projected(rdb, settings.redis.prefix) == replay(settings.store.database_url)
    generations = queries.get("/projections").json()
    assert all(status["generation"] == 2 for status in generations)
    old_keys = list(rdb.scan_iter(match=f"{settings.redis.prefix}:*:g1:*"))
    assert old_keys == [], "the old generation is deleted after the switch"
