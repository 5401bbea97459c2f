"""A rebuild and a dry run of the same projection started together, round after round, while
commands keep arriving and dashboards keep polling (real write API, query API and worker).

Each round both are started at the same moment; the one that finds the rebuild lock taken retries
until it gets its turn, so every round runs both, back to back. No poll may ever answer anything
but 200 (a deleted live generation would answer 404), every dry run must report the live models
consistent, and afterwards every account answers 200 and the models equal a replay.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import redis

from kernel.settings import Settings
from projectors.balances import BalancesProjection
from projectors.catch_up import ProjectionContext, open_context
from projectors.consistency import Comparison, check_projection
from projectors.errors import RebuildInProgress
from projectors.rebuild import RebuildResult, rebuild_projection
from tests.support import projected, replay, wait_until, write_traffic

pytest_plugins = ["tests.fixtures"]  # settings, rdb, services

ROUNDS = 12
ACCOUNTS = [f"race-{n}" for n in range(4)]


async def _in_turn(run: object) -> object:
    """Start `run()` and, while another run holds the rebuild lock, start it again."""
    while True:
        try:
            return await run()  # type: ignore[operator]
        except RebuildInProgress:
            await asyncio.sleep(0.01)  # a retry interval, not a synchronisation


async def _rounds(ctx: ProjectionContext) -> list[bool]:
    consistent = []
    for _ in range(ROUNDS):
        rebuilt, checked = await asyncio.gather(
            _in_turn(lambda: rebuild_projection(ctx, BalancesProjection(), batch_size=200)),
            _in_turn(lambda: check_projection(ctx, BalancesProjection())),
        )
        assert isinstance(rebuilt, RebuildResult)
        assert isinstance(checked, Comparison)
        assert checked.differences == [], checked.differences
        consistent.append(checked.consistent)
    return consistent


def _caught_up(queries: httpx.Client, position: int) -> bool:
    return all(s["checkpoint"] >= position for s in queries.get("/projections").json())


def test_a_rebuild_and_a_dry_run_racing_under_traffic_never_hide_an_account(
    services: tuple[httpx.Client, httpx.Client], settings: Settings, rdb: redis.Redis
) -> None:
    writes, queries = services
    write_traffic(settings.store.database_url, accounts=40, events_per_account=25)
    for account_id in ACCOUNTS:
        assert writes.post("/accounts", json={"owner": "R", "account_id": account_id}).is_success
    head = writes.post(f"/accounts/{ACCOUNTS[0]}/deposit", json={"amount": "1.00"}).json()
    wait_until(lambda: _caught_up(queries, head["position"]), 60, "the projections to catch up")
    polled = [f"acct-{n:05d}" for n in range(0, 40, 5)] + ACCOUNTS

    stop = threading.Event()
    problems: list[str] = []

    def traffic() -> None:
        with httpx.Client(base_url=writes.base_url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                account_id = ACCOUNTS[n % len(ACCOUNTS)]
                response = client.post(f"/accounts/{account_id}/deposit", json={"amount": "1.00"})
                if response.status_code != 200:
                    problems.append(f"deposit answered {response.status_code}")
                n += 1

    def dashboard() -> None:
        with httpx.Client(base_url=queries.base_url, timeout=10) as client:
            while not stop.is_set():
                for account_id in polled:
                    response = client.get(f"/accounts/{account_id}/balance")
                    if response.status_code != 200:
                        problems.append(f"{account_id} answered {response.status_code}")

    async def race() -> list[bool]:
        async with open_context(settings) as ctx:
            return await _rounds(ctx)

    threads = [threading.Thread(target=traffic), threading.Thread(target=dashboard)]
    for thread in threads:
        thread.start()
    try:
        consistent = asyncio.run(race())
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert consistent == [True] * ROUNDS
    assert problems == []
    final = writes.post(f"/accounts/{ACCOUNTS[0]}/deposit", json={"amount": "1.00"}).json()
    wait_until(lambda: _caught_up(queries, final["position"]), 60, "the projections to catch up")
    for account_id in projected(rdb, settings.redis.prefix).balances:
        assert queries.get(f"/accounts/{account_id}/balance").status_code == 200, account_id
    assert projected(rdb, settings.redis.prefix) == replay(settings.store.database_url)
