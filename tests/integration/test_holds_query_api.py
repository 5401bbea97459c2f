"""Holds in the read models: the write API's commands, projected by the real catch-up into Redis
and read through the real query API app; rebuilt in small batches and checked by a dry run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
from litestar.testing import AsyncTestClient

from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.catch_up import open_context, run_catch_up
from projectors.consistency import check_projection
from projectors.rebuild import projection_named, rebuild_projection
from read_side.api.app import create_query_app
from tests.integration.write_api_client import write_api
from tests.support import projected, replay_store

pytest_plugins = ["tests.fixtures"]  # settings, rdb

Client = AsyncTestClient[Any]


@dataclass(frozen=True)
class Holds:
    """alice (100.00) holds 30.00 for bob (h-1, captured 12.50), 10.00 (h-2, voided) and 5.00
    (h-3, pending, reference "deposit"), all projected."""

    positions: dict[str, int]
    expires_at: dict[str, str]
    """As the write API answered each placement."""
    head: int
    all_held: datetime
    """An instant after the three holds were placed and before any was resolved."""


async def post(client: Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post(path, json=body) if body else await client.post(path)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
async def holds(settings: Settings) -> Holds:
    async with write_api(settings.store.database_url) as writes:
        await post(writes, "/accounts", {"owner": "Alice", "account_id": "alice"})
        await post(writes, "/accounts", {"owner": "Bob", "account_id": "bob"})
        await post(writes, "/accounts/alice/deposit", {"amount": "100.00"})
        positions, expires_at = {}, {}
        for hold_id, amount in (("h-1", "30.00"), ("h-2", "10.00"), ("h-3", "5.00")):
            body = {"from_account": "alice", "to_account": "bob", "amount": amount}
            reference = {"reference": "deposit"} if hold_id == "h-3" else {}
            placed = await post(writes, "/holds", {**body, "hold_id": hold_id, **reference})
            expires_at[hold_id] = placed["expires_at"]
        await asyncio.sleep(0.05)  # recorded times on both sides of `all_held` differ
        all_held = datetime.now(UTC)
        await asyncio.sleep(0.05)
        positions["h-1"] = (await post(writes, "/holds/h-1/capture", {"amount": "12.50"}))[
            "position"
        ]
        positions["h-2"] = (await post(writes, "/holds/h-2/void"))["position"]
        head = await writes.app.state.store.head_position()
    await run_catch_up(settings)
    return Holds(positions, expires_at, head, all_held)


@pytest.fixture
async def client(settings: Settings, holds: Holds) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_query_app(settings)) as test_client:
        yield test_client


async def test_the_balance_shows_what_is_held_and_what_is_available(client: Client) -> None:
    alice = (await client.get("/accounts/alice/balance")).json()
    bob = (await client.get("/accounts/bob/balance")).json()
    rows = (await client.get("/accounts")).json()["accounts"]

    assert (alice["balance"], alice["held"], alice["available"]) == ("87.50", "5.00", "82.50")
    assert (bob["balance"], bob["held"], bob["available"]) == ("12.50", "0.00", "12.50")
    assert [(r["account_id"], r["held"], r["available"]) for r in rows] == [
        ("alice", "5.00", "82.50"),
        ("bob", "0.00", "12.50"),
    ]


async def test_a_balance_as_of_an_earlier_instant_shows_what_was_held_then(
    client: Client, holds: Holds
) -> None:
    then = (
        await client.get("/accounts/alice/balance", params={"as_of": holds.all_held.isoformat()})
    ).json()

    assert (then["balance"], then["held"], then["available"]) == ("100.00", "45.00", "55.00")


async def test_a_hold_is_served_with_its_status_amounts_and_position(
    client: Client, holds: Holds
) -> None:
    captured = (await client.get("/holds/h-1")).json()
    pending = (await client.get("/holds/h-3")).json()

    assert captured.pop("expires_at") == holds.expires_at["h-1"], "one spelling on both APIs"
    assert captured == {
        "hold_id": "h-1",
        "from_account": "alice",
        "to_account": "bob",
        "amount": "30.00",
        "captured_amount": "12.50",
        "currency": "USD",
        "reference": None,
        "status": "captured",
        "position": holds.positions["h-1"],
    }
    assert (pending["status"], pending["captured_amount"], pending["reference"]) == (
        "pending",
        "0.00",
        "deposit",
    )
    assert (await client.get("/holds/h-2")).json()["status"] == "voided"


async def test_a_capture_appears_as_a_posted_transfer_with_the_holds_id(
    client: Client, holds: Holds
) -> None:
    transfer = (await client.get("/transfers/h-1")).json()

    assert (transfer["status"], transfer["amount"]) == ("posted", "12.50")
    assert transfer["position"] == holds.positions["h-1"] - 1  # its last side, before HoldCaptured
    assert (await client.get("/transfers/h-2")).status_code == 404


async def test_an_unknown_hold_is_404_hold_not_found(client: Client) -> None:
    response = await client.get("/holds/nothing-like-it")

    assert (response.status_code, response.json()["error"]) == (404, "hold_not_found")


async def test_an_accounts_holds_are_listed_newest_first_on_both_sides_and_by_status(
    client: Client,
) -> None:
    async def ids(account: str, **params: Any) -> list[str]:
        response = await client.get(f"/accounts/{account}/holds", params=params)
        assert response.status_code == 200, response.text
        return [hold["hold_id"] for hold in response.json()["holds"]]

    assert await ids("alice") == ["h-3", "h-2", "h-1"]
    assert await ids("bob") == ["h-3", "h-2", "h-1"]
    assert await ids("alice", status="pending") == ["h-3"]
    assert await ids("bob", status="captured") == ["h-1"]
    assert await ids("alice", status="voided") == ["h-2"]
    assert await ids("alice", status="expired") == []


async def test_the_holds_list_pages_with_next_before_position(client: Client) -> None:
    first = (await client.get("/accounts/alice/holds", params={"limit": 2})).json()
    second = (
        await client.get(
            "/accounts/alice/holds",
            params={"limit": 2, "before_position": first["next_before_position"]},
        )
    ).json()
    filtered = (
        await client.get("/accounts/alice/holds", params={"limit": 1, "status": "captured"})
    ).json()

    assert [h["hold_id"] for h in first["holds"]] == ["h-3", "h-2"]
    assert [h["hold_id"] for h in second["holds"]] == ["h-1"]
    assert second["next_before_position"] is None
    assert ([h["hold_id"] for h in filtered["holds"]], filtered["next_before_position"]) == (
        ["h-1"],
        None,
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/accounts/nobody/holds", {}, 404, "account_not_found"),
        ("/accounts/alice/holds", {"status": "lost"}, 400, "validation_error"),
        ("/accounts/alice/holds", {"before_position": 0}, 400, "validation_error"),
    ],
)
async def test_a_bad_holds_query_answers_its_code(
    client: Client, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    response = await client.get(path, params=params)

    assert (response.status_code, response.json()["error"]) == (status, code)


async def test_statement_entries_show_holds_made_and_resolved_with_balance_moving_only_on_capture(
    client: Client,
) -> None:
    alice = (await client.get("/accounts/alice/statement", params={"limit": 6})).json()
    bob = (await client.get("/accounts/bob/statement", params={"limit": 5})).json()

    def lines(statement: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (e["type"], e["amount"], e["hold_amount"], e["balance_after"], e["transfer_id"],
             e["counterparty"])
            for e in statement["entries"]
        ]  # fmt: skip

    assert lines(alice) == [
        ("HoldVoided", "0.00", "10.00", "87.50", "h-2", "bob"),
        ("HoldCaptured", "0.00", "17.50", "87.50", "h-1", "bob"),
        ("TransferSent", "-12.50", None, "87.50", "h-1", "bob"),
        ("HoldPlaced", "0.00", "5.00", "100.00", "h-3", "bob"),
        ("HoldPlaced", "0.00", "10.00", "100.00", "h-2", "bob"),
        ("HoldPlaced", "0.00", "30.00", "100.00", "h-1", "bob"),
    ]
    assert lines(bob) == [
        ("HoldVoided", "0.00", "10.00", "12.50", "h-2", "alice"),
        ("HoldCaptured", "0.00", "17.50", "12.50", "h-1", "alice"),
        ("TransferReceived", "12.50", None, "12.50", "h-1", "alice"),
        ("HoldPlaced", "0.00", "5.00", "0.00", "h-3", "alice"),
        ("HoldPlaced", "0.00", "10.00", "0.00", "h-2", "alice"),
    ]


async def test_a_statement_with_holds_still_adds_up_to_the_balance(client: Client) -> None:
    for account_id in ("alice", "bob"):
        balance = (await client.get(f"/accounts/{account_id}/balance")).json()["balance"]
        entries = (await client.get(f"/accounts/{account_id}/statement")).json()["entries"]

        assert sum(Decimal(e["amount"]) for e in entries) == Decimal(balance)


def hold_keys(client: redis.Redis, prefix: str) -> dict[str, Any]:
    keys = ReadModelKeys(prefix)
    live = keys.generation(BALANCES, int(client.get(keys.live(BALANCES)) or 1))
    return {
        "holds": {
            key.rsplit(":", 1)[1]: client.hgetall(key)
            for key in client.scan_iter(match=live.hold("*"))
        },
        "due": client.zrange(live.holds_due, 0, -1, withscores=True),
        "pending": client.zrange(live.pending_holds_of("alice"), 0, -1),
        "all": client.zrange(live.holds_of("bob"), 0, -1, withscores=True),
    }


async def test_a_rebuild_in_small_batches_and_a_dry_run_agree_with_the_holds(
    settings: Settings, holds: Holds, rdb: redis.Redis
) -> None:
    before = hold_keys(rdb, settings.redis.prefix)

    async with open_context(settings) as ctx:
        for name in (BALANCES, STATEMENTS):
            await rebuild_projection(ctx, projection_named(name), batch_size=3)
        consistent = [
            (await check_projection(ctx, projection_named(name))).consistent
            for name in (BALANCES, STATEMENTS)
        ]

    assert consistent == [True, True]
    assert projected(rdb, settings.redis.prefix) == await replay_store(settings.store.database_url)
    assert hold_keys(rdb, settings.redis.prefix) == before
    assert len(before["holds"]) == 3
    assert [hold_id for hold_id, _ in before["due"]] == ["h-3"]
    assert before["pending"] == ["h-3"]
