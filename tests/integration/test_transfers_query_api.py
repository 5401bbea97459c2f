"""Transfers and overdraft limits in the read models, through the real query API app (Litestar's
AsyncTestClient) over real Redis and PostgreSQL, and through rebuilds and dry runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import redis
from litestar.testing import AsyncTestClient

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.catch_up import open_context, run_catch_up
from projectors.consistency import check_projection
from projectors.rebuild import projection_named, rebuild_projection
from read_side.api.app import create_query_app
from tests.support import (
    append_transfer,
    projected,
    replay,
    replay_store,
    set_overdraft_limit,
    write_traffic,
)
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

pytest_plugins = ["tests.fixtures"]  # settings, rdb

Client = AsyncTestClient[Any]


@dataclass(frozen=True)
class Ledger:
    """Generated traffic plus an overdraft limit and transfers, projected."""

    settings: Settings
    rent_position: int
    head: int


async def add_transfers(database_url: str) -> tuple[int, int]:
    """x-ann gets a 100.00 overdraft limit and pays x-bob more than she holds; x-cat pays back."""
    engine = create_async_store_engine(database_url)
    try:
        store = EventStore(engine)
        for account_id in ("x-ann", "x-bob", "x-cat"):
            opened = NewEvent.from_domain(AccountOpened(owner=account_id, currency="USD"))
            await store.append(account_id, [opened], expected_version=0)
        await store.append("x-cat", [NewEvent.from_domain(MoneyDeposited(Decimal("20")))], 1)
        await set_overdraft_limit(store, "x-ann", "100.00")
        rent = await append_transfer(store, "x-ann", "x-bob", "75.00", "rent", "May")
        await append_transfer(store, "x-ann", "x-cat", "0.01", "tip")
        await append_transfer(store, "x-cat", "x-ann", "12.34", "refund")
        return rent, await store.head_position()
    finally:
        await engine.dispose()


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    write_traffic(settings.store.database_url, accounts=12, events_per_account=8)
    rent, head = asyncio.run(add_transfers(settings.store.database_url))
    asyncio.run(run_catch_up(settings))
    return Ledger(settings, rent, head)


@pytest.fixture
async def client(ledger: Ledger) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_query_app(ledger.settings)) as test_client:
        yield test_client


async def test_a_transfer_is_served_with_both_accounts_its_amount_and_status(
    client: Client, ledger: Ledger
) -> None:
    response = await client.get("/transfers/rent")

    assert response.status_code == 200
    body = response.json()
    assert body.pop("recorded_at")
    assert body == {
        "transfer_id": "rent",
        "from_account": "x-ann",
        "to_account": "x-bob",
        "amount": "75.00",
        "currency": "USD",
        "reference": "May",
        "status": "posted",
        "position": ledger.rent_position,
        "reversal_of": None,
        "reversed_by": None,
    }
    assert (await client.get("/transfers/tip")).json()["reference"] is None


async def test_an_unknown_transfer_is_404_transfer_not_found(client: Client) -> None:
    response = await client.get("/transfers/nothing-like-it")

    assert response.status_code == 404
    assert response.json()["error"] == "transfer_not_found"
    assert "nothing-like-it" in response.json()["detail"]


async def test_a_transfer_read_waits_for_min_position_like_the_other_reads(
    client: Client, ledger: Ledger
) -> None:
    reached = await client.get("/transfers/rent", params={"min_position": ledger.head})
    behind = await client.get(
        "/transfers/rent", params={"min_position": ledger.head + 1, "wait_ms": 30}
    )

    assert reached.status_code == 200
    assert (behind.status_code, behind.json()["error"]) == (503, "projection_behind")


async def test_the_balance_shows_the_overdraft_limit_and_available_balance_plus_limit(
    client: Client,
) -> None:
    body = (await client.get("/accounts/x-ann/balance")).json()

    assert (body["balance"], body["overdraft_limit"], body["available"]) == (
        "-62.67",
        "100.00",
        "37.33",
    )
    assert (await client.get("/accounts/x-bob/balance")).json()["available"] == "75.00"


async def test_the_accounts_list_shows_overdraft_limit_and_available(client: Client) -> None:
    params = {"sort": "id", "order": "desc", "limit": 3}
    rows = (await client.get("/accounts", params=params)).json()["accounts"]

    assert [(r["account_id"], r["overdraft_limit"], r["available"]) for r in rows] == [
        ("x-cat", "0.00", "7.67"),
        ("x-bob", "0.00", "75.00"),
        ("x-ann", "100.00", "37.33"),
    ]


async def test_statement_entries_of_a_transfer_carry_its_id_counterparty_and_reference(
    client: Client,
) -> None:
    sender = (await client.get("/accounts/x-ann/statement", params={"limit": 4})).json()
    receiver = (await client.get("/accounts/x-bob/statement", params={"limit": 1})).json()

    assert [
        (e["type"], e["amount"], e["balance_after"], e["transfer_id"], e["counterparty"],
         e["reference"])
        for e in sender["entries"]
    ] == [
        ("TransferReceived", "12.34", "-62.67", "refund", "x-cat", None),
        ("TransferSent", "-0.01", "-75.01", "tip", "x-cat", None),
        ("TransferSent", "-75.00", "-75.00", "rent", "x-bob", "May"),
        ("OverdraftLimitSet", "0.00", "0.00", None, None, None),
    ]  # fmt: skip
    (received,) = receiver["entries"]
    assert (received["type"], received["amount"], received["balance_after"]) == (
        "TransferReceived",
        "75.00",
        "75.00",
    )
    assert (received["transfer_id"], received["counterparty"]) == ("rent", "x-ann")


async def test_transfers_leave_the_summary_totals_at_deposits_minus_withdrawals(
    client: Client, ledger: Ledger
) -> None:
    totals: dict[str, Decimal] = {}
    for row in (await replay_store(ledger.settings.store.database_url)).balances.values():
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + Decimal(row["balance"])

    summary = (await client.get("/summary")).json()

    assert {c: Decimal(v) for c, v in summary["balances_by_currency"].items()} == totals


def transfer_hashes(client: redis.Redis, prefix: str) -> dict[str, dict[str, str]]:
    keys = ReadModelKeys(prefix)
    live = keys.generation(BALANCES, int(client.get(keys.live(BALANCES)) or 1))
    return {
        key.rsplit(":", 1)[1]: client.hgetall(key)
        for key in client.scan_iter(match=live.transfer("*"))
    }


def test_a_rebuild_in_small_batches_and_a_dry_run_agree_with_the_transfers(
    ledger: Ledger, rdb: redis.Redis
) -> None:
    settings, prefix = ledger.settings, ledger.settings.redis.prefix
    before = transfer_hashes(rdb, prefix)

    async def rebuild_then_check() -> list[bool]:
        async with open_context(settings) as ctx:
            for name in (BALANCES, STATEMENTS):
                await rebuild_projection(ctx, projection_named(name), batch_size=3)
            return [
                (await check_projection(ctx, projection_named(name))).consistent
                for name in (BALANCES, STATEMENTS)
            ]

    assert asyncio.run(rebuild_then_check()) == [True, True]
    assert projected(rdb, prefix) == replay(settings.store.database_url)
    assert transfer_hashes(rdb, prefix) == before
    assert set(before) == {"{rent}", "{tip}", "{refund}"}
