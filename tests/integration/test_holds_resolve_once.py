"""A hold is resolved exactly once: captures, voids and the system's expiry racing each other at
its deadline, from many clients at once, on SQLite and PostgreSQL; and the expiry loop's own step
(`expire_due`) over the projected due set, on PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from kernel.read_model_layout import BALANCES, ReadModelKeys
from kernel.settings import Settings
from projectors import hold_expiry
from projectors.catch_up import run_catch_up
from projectors.hold_expiry import due_holds, expire_due
from tests.integration.write_api_client import racing_client, store_of, write_api
from write_side.holds import HoldRunner

pytest_plugins = ["tests.fixtures"]  # settings

RESOLUTIONS = {"HoldCaptured", "HoldVoided", "HoldExpired"}
CLIENTS = 8


async def alice_holds_for_bob(client: AsyncTestClient[Litestar], expires_in_s: int) -> datetime:
    for account_id in ("alice", "bob"):
        assert (
            await client.post("/accounts", json={"owner": "A", "account_id": account_id})
        ).status_code == 201
    await client.post("/accounts/alice/deposit", json={"amount": "100.00"})
    body = {"from_account": "alice", "to_account": "bob", "amount": "30.00", "hold_id": "h-1"}
    placed = await client.post("/holds", json={**body, "expires_in_s": expires_in_s})
    assert placed.status_code == 201, placed.text
    return datetime.fromisoformat(placed.json()["expires_at"])


async def resolutions(client: AsyncTestClient[Litestar]) -> Counter[tuple[str, str]]:
    return Counter(
        (e.stream_id, e.type)
        for e in await store_of(client).read_after(0, limit=10_000)
        if e.type in RESOLUTIONS
    )


@pytest.mark.parametrize("lead_ms", [200, 30])
async def test_captures_voids_and_expiries_racing_at_the_deadline_resolve_the_hold_once(
    store_url: str, lead_ms: int
) -> None:
    """Sent `lead_ms` before the deadline: the earlier start mostly lets a capture or void win,
    the later one mostly the expiry; either way, exactly one resolution."""
    async with write_api(store_url, command_deadline_ms=30_000) as client:
        expires_at = await alice_holds_for_bob(client, expires_in_s=1)
        runner: HoldRunner = client.app.state.holds
        while datetime.now(UTC) < expires_at - timedelta(milliseconds=lead_ms):
            await asyncio.sleep(0.005)

        async with racing_client(client) as racing, asyncio.timeout(60):
            calls: list[Any] = []
            for n in range(CLIENTS):
                calls.append(racing.post("/holds/h-1/capture", json={"amount": f"{n + 1}.00"}))
                calls.append(racing.post("/holds/h-1/void"))
                calls.append(runner.expire("h-1"))
            outcomes = await asyncio.gather(*calls)

        answers = [o for o in outcomes if isinstance(o, httpx.Response)]
        expiries = [o for o in outcomes if isinstance(o, bool)]
        found = await resolutions(client)
        assert sum(found.values()) == 2, found  # one resolution: one event on each side
        (status,) = {kind for (_, kind) in found}
        winners = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert all(a.status_code == 409 for a in refused), [a.text for a in refused]
        assert {a.json()["error"] for a in refused} <= {"hold_not_pending"}
        word = {"HoldCaptured": "captured", "HoldVoided": "voided", "HoldExpired": "expired"}
        assert {a.json()["status"] for a in refused} == {word[status]}
        assert len(winners) == (0 if status == "HoldExpired" else 1)
        assert [w.json()["status"] for w in winners] in ([], [word[status]])
        # The system's expiry wins only as an expiry; a late capture or void may append it too.
        assert sum(expiries) <= (1 if status == "HoldExpired" else 0)


async def test_the_system_expires_a_hold_only_after_its_deadline_and_once(store_url: str) -> None:
    async with write_api(store_url) as client:
        expires_at = await alice_holds_for_bob(client, expires_in_s=2)
        runner: HoldRunner = client.app.state.holds

        early = await runner.expire("h-1")
        while datetime.now(UTC) < expires_at:
            await asyncio.sleep(0.05)
        on_time = await runner.expire("h-1")
        again = await runner.expire("h-1")
        unknown = await runner.expire("no-such-hold")

        assert (early, on_time, again, unknown) == (False, True, False, False)
        assert await resolutions(client) == {("alice", "HoldExpired"): 1, ("bob", "HoldExpired"): 1}
        expiries = [e for e in await store_of(client).read_after(0) if e.type == "HoldExpired"]
        assert [(e.metadata["command"], e.metadata["actor"]) for e in expiries] == [
            ("ExpireHold", "system"),
            ("ExpireHold", "system"),
        ]
        balance = await client.post("/accounts/alice/withdraw", json={"amount": "100.00"})
        assert balance.status_code == 200


async def test_the_expiry_step_takes_due_holds_from_the_projected_due_set(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with write_api(settings.store.database_url) as client:
        expires_at = await alice_holds_for_bob(client, expires_in_s=1)
        body = {"from_account": "alice", "to_account": "bob", "amount": "1.00", "hold_id": "later"}
        assert (await client.post("/holds", json=body)).status_code == 201
        await run_catch_up(settings)
        runner: HoldRunner = client.app.state.holds
        redis = Redis.from_url(settings.redis.url, decode_responses=True)
        keys = ReadModelKeys(settings.redis.prefix)
        try:
            assert await due_holds(redis, keys, expires_at.timestamp() - 0.001) == []
            assert await due_holds(redis, keys, expires_at.timestamp()) == ["h-1"]
            before_due = await expire_due(redis, keys, runner)
            while datetime.now(UTC) < expires_at:
                await asyncio.sleep(0.05)

            # Ids the store cannot expire (resolved, or unknown to it) fill whole pages first.
            live = keys.generation(BALANCES, int(await redis.get(keys.live(BALANCES)) or 1))
            await redis.zadd(live.holds_due, {f"stale-{n}": 0 for n in range(5)})
            monkeypatch.setattr(hold_expiry, "BATCH", 2)
            first = await expire_due(redis, keys, runner)
            before_projection = await expire_due(redis, keys, runner)  # still in the due set
            await run_catch_up(settings)
            after_projection = await due_holds(redis, keys, expires_at.timestamp() + 3600)
        finally:
            await redis.aclose()

        assert (before_due, first, before_projection) == (0, 1, 0)
        assert after_projection == [f"stale-{n}" for n in range(5)] + ["later"]
        assert await resolutions(client) == {("alice", "HoldExpired"): 1, ("bob", "HoldExpired"): 1}
