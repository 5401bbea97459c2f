"""Reversals in the read models, on SQLite and PostgreSQL: made through the real write API,
projected by the real catch-up over Redis, read through the real query API and the change feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
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
from tests.support import projected, read_side_settings, replay

pytest_plugins = ["tests.fixtures"]  # rdb

Client = AsyncTestClient[Any]


async def reverse_rent(settings: Settings) -> dict[str, Any]:
    """alice pays bob 30.00 (`rent`) and 5.00 (`tip`); `rent` is reversed. The reversal's answer."""
    async with write_api(settings.store.database_url) as writes:
        for account_id in ("alice", "bob"):
            await writes.post("/accounts", json={"owner": "Ada", "account_id": account_id})
        await writes.post("/accounts/alice/deposit", json={"amount": "100.00"})
        for transfer_id, amount in (("rent", "30.00"), ("tip", "5.00")):
            body = {"from_account": "alice", "to_account": "bob", "amount": amount}
            await writes.post("/transfers", json={**body, "transfer_id": transfer_id})
        response = await writes.post("/transfers/rent/reverse", json={"reference": "refund"})
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
def settings(store_url: str, redis_url: str, redis_prefix: str) -> Settings:
    return read_side_settings(store_url, redis_url, redis_prefix)


@pytest.fixture
def reversal(settings: Settings) -> dict[str, Any]:
    answer = asyncio.run(reverse_rent(settings))
    asyncio.run(run_catch_up(settings))
    return answer


@pytest.fixture
async def client(settings: Settings, reversal: dict[str, Any]) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_query_app(settings)) as test_client:
        yield test_client


async def test_the_original_is_reversed_by_the_reversal_which_names_it(
    client: Client, reversal: dict[str, Any]
) -> None:
    params = {"min_position": reversal["position"]}
    original = (await client.get("/transfers/rent", params=params)).json()
    undone = (await client.get("/transfers/rent.reversal", params=params)).json()
    untouched = (await client.get("/transfers/tip", params=params)).json()

    assert (original["status"], original["reversed_by"], original["reversal_of"]) == (
        "reversed",
        "rent.reversal",
        None,
    )
    assert (original["from_account"], original["amount"], original["reference"]) == (
        "alice",
        "30.00",
        None,
    )
    assert original["position"] < reversal["position"]  # the original's own events
    undone.pop("recorded_at")
    assert undone == {
        "transfer_id": "rent.reversal",
        "from_account": "bob",
        "to_account": "alice",
        "amount": "30.00",
        "currency": "USD",
        "reference": "refund",
        "status": "posted",
        "position": reversal["position"],
        "reversal_of": "rent",
        "reversed_by": None,
    }
    assert (untouched["status"], untouched["reversed_by"]) == ("posted", None)


async def test_balances_are_back_and_both_transfers_stay_in_both_statements(
    client: Client,
) -> None:
    balances = [
        (await client.get(f"/accounts/{a}/balance")).json()["balance"] for a in ("alice", "bob")
    ]
    alice = (await client.get("/accounts/alice/statement")).json()["entries"]
    bob = (await client.get("/accounts/bob/statement")).json()["entries"]

    assert balances == ["95.00", "5.00"]
    assert [(e["transfer_id"], e["amount"], e["reversal_of"]) for e in alice[:3]] == [
        ("rent.reversal", "30.00", "rent"),
        ("tip", "-5.00", None),
        ("rent", "-30.00", None),
    ]
    assert [(e["transfer_id"], e["amount"], e["reversal_of"]) for e in bob[:3]] == [
        ("rent.reversal", "-30.00", "rent"),
        ("tip", "5.00", None),
        ("rent", "30.00", None),
    ]


def feed(rdb: redis.Redis, settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    keys = ReadModelKeys(settings.redis.prefix)
    live = keys.generation(BALANCES, int(rdb.get(keys.live(BALANCES)) or 1))
    return [
        (entry_id, fields["kind"], json.loads(fields["data"]))
        for entry_id, fields in rdb.xrange(live.changes)
    ]


def test_the_change_feed_shows_the_reversal_and_the_originals_new_status(
    rdb: redis.Redis, settings: Settings, reversal: dict[str, Any]
) -> None:
    transfers = [(i, data) for i, kind, data in feed(rdb, settings) if kind == "transfer"]

    flip_id, flip = transfers[-2]
    done_id, done = transfers[-1]
    assert (flip["transfer_id"], flip["status"], flip["reversed_by"]) == (
        "rent",
        "reversed",
        "rent.reversal",
    )
    assert (flip["from_account"], flip["to_account"], flip["amount"]) == ("alice", "bob", "30.00")
    assert (done["transfer_id"], done["reversal_of"], done["position"]) == (
        "rent.reversal",
        "rent",
        reversal["position"],
    )
    assert (flip_id, done_id) == (
        f"{reversal['position'] - 1}-1",
        f"{reversal['position']}-1",
    )
    assert "reversal_of" not in transfers[0][1]  # ordinary transfers keep their shape


def test_a_rebuild_and_a_dry_run_agree_with_the_reversal(
    rdb: redis.Redis, settings: Settings, reversal: dict[str, Any]
) -> None:
    keys = ReadModelKeys(settings.redis.prefix)

    def transfer_hashes() -> dict[str, dict[str, str]]:
        live = keys.generation(BALANCES, int(rdb.get(keys.live(BALANCES)) or 1))
        return {t: rdb.hgetall(live.transfer(t)) for t in ("rent", "rent.reversal", "tip")}

    before = transfer_hashes()

    async def rebuild_then_check() -> list[bool]:
        async with open_context(settings) as ctx:
            for name in (BALANCES, STATEMENTS):
                await rebuild_projection(ctx, projection_named(name), batch_size=2)
            return [
                (await check_projection(ctx, projection_named(name))).consistent
                for name in (BALANCES, STATEMENTS)
            ]

    assert asyncio.run(rebuild_then_check()) == [True, True]
    after = transfer_hashes()
    assert list(after.values()) == list(before.values())
    assert [h["status"] for h in after.values()] == ["reversed", "posted", "posted"]
    assert projected(rdb, settings.redis.prefix) == replay(settings.store.database_url)


async def test_a_captured_holds_transfer_reads_reversed_once_its_reversal_is_projected(
    settings: Settings,
) -> None:
    async with write_api(settings.store.database_url) as writes:
        for account_id in ("carol", "dan"):
            await writes.post("/accounts", json={"owner": "Cy", "account_id": account_id})
        await writes.post("/accounts/carol/deposit", json={"amount": "20.00"})
        hold = {"from_account": "carol", "to_account": "dan", "amount": "8.00", "hold_id": "card"}
        assert (await writes.post("/holds", json=hold)).status_code == 201
        assert (await writes.post("/holds/card/capture")).status_code == 200
        reversed_ = await writes.post("/transfers/card/reverse")
        assert reversed_.status_code == 201, reversed_.text
    await run_catch_up(settings)

    async with AsyncTestClient(app=create_query_app(settings)) as queries:
        params = {"min_position": reversed_.json()["position"]}
        original = (await queries.get("/transfers/card", params=params)).json()
        hold_now = (await queries.get("/holds/card", params=params)).json()
        carol = (await queries.get("/accounts/carol/balance", params=params)).json()

    assert (original["status"], original["reversed_by"]) == ("reversed", "card.reversal")
    assert hold_now["status"] == "captured"  # the hold was captured; its transfer was reversed
    assert (carol["balance"], carol["held"]) == ("20.00", "0.00")
