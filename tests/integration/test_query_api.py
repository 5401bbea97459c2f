"""The query API over HTTP (Litestar's AsyncTestClient) against read models in real Redis.

The read-your-writes test uses httpx's ASGI transport instead: AsyncTestClient blocks the event
loop while a request runs, so the write could not happen while the request waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from kernel.read_model_layout import ReadModelKeys
from kernel.settings import Settings
from projectors.catch_up import run_catch_up
from read_side.api.app import create_query_app
from tests.support import (
    Models,
    make_settings,
    replay,
    write_traffic,
)
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

pytest_plugins = ["tests.fixtures"]  # settings, worker_env, rdb

Client = AsyncTestClient[Any]


@asynccontextmanager
async def http_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://query"
        ) as client,
    ):
        yield client


@pytest.fixture
def projected_settings(settings: Settings) -> tuple[Settings, int, Models]:
    head = write_traffic(settings.store.database_url, accounts=23, events_per_account=12)
    asyncio.run(run_catch_up(settings))
    return settings, head, replay(settings.store.database_url)


@pytest.fixture
async def client(projected_settings: tuple[Settings, int, Models]) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_query_app(projected_settings[0])) as test_client:
        yield test_client


@pytest.fixture
def expected(projected_settings: tuple[Settings, int, Models]) -> Models:
    return projected_settings[2]


async def test_balance_answers_the_projected_account(client: Client, expected: Models) -> None:
    response = await client.get("/accounts/acct-00003/balance")

    assert response.status_code == 200
    row = expected.balances["acct-00003"]
    assert response.json() == {
        "account_id": "acct-00003",
        "owner": row["owner"],
        "currency": row["currency"],
        "balance": row["balance"],
        "status": "closed",
        "version": row["version"],
        "position": row["position"],
        "overdraft_limit": "0.00",
        "available": row["balance"],
        "held": "0.00",
    }


@pytest.mark.parametrize("path", ["/accounts/nobody/balance", "/accounts/nobody/statement"])
async def test_an_unknown_account_is_404_account_not_found(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.json()["error"] == "account_not_found"
    assert "nobody" in response.json()["detail"]


async def test_statement_pages_newest_first_until_next_before_version_is_null(
    client: Client, expected: Models
) -> None:
    entries, before, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 5} | ({"before_version": before} if before else {})
        body = (await client.get("/accounts/acct-00001/statement", params=params)).json()
        entries += body["entries"]
        pages += 1
        before = body["next_before_version"]
        if before is None:
            break

    assert pages == 3  # 12 entries in pages of 5
    assert [
        {k: v for k, v in e.items() if k != "recorded_at"} for e in entries
    ] == expected.statements["acct-00001"]


async def test_accounts_page_by_id_and_by_balance_in_both_orders_with_cursors(
    client: Client, expected: Models
) -> None:
    def key(aid: str) -> tuple[Decimal, str]:
        return (Decimal(expected.balances[aid]["balance"]), aid)

    for sort, order, ordering in [
        ("id", "asc", sorted(expected.balances)),
        ("id", "desc", sorted(expected.balances, reverse=True)),
        ("balance", "asc", sorted(expected.balances, key=key)),
        ("balance", "desc", sorted(expected.balances, key=key, reverse=True)),
    ]:
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "order": order, "limit": 4} | (
                {"cursor": cursor} if cursor else {}
            )
            response = await client.get("/accounts", params=params)
            assert response.status_code == 200
            body = response.json()
            seen += body["accounts"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert [a["account_id"] for a in seen] == ordering, (sort, order)
        assert all(a["balance"] == expected.balances[a["account_id"]]["balance"] for a in seen)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/accounts", {"limit": 0}),
        ("/accounts", {"limit": 501}),
        ("/accounts", {"limit": "ten"}),
        ("/accounts", {"sort": "owner"}),
        ("/accounts", {"order": "up"}),
        ("/accounts", {"cursor": "not-a-cursor!"}),
        ("/accounts/acct-00001/statement", {"before_version": 0}),
        ("/accounts/acct-00001/statement", {"limit": 10_000}),
        ("/accounts/acct-00001/balance", {"wait_ms": 20_000}),
        ("/accounts/acct-00001/balance", {"min_position": -1}),
    ],
)
async def test_bad_query_parameters_are_400_validation_error(
    client: Client, path: str, params: dict[str, Any]
) -> None:
    response = await client.get(path, params=params)

    assert response.status_code == 400
    assert set(response.json()) == {"error", "detail"}
    assert response.json()["error"] == "validation_error"


async def test_a_cursor_from_another_sort_order_is_refused(client: Client) -> None:
    first = (await client.get("/accounts", params={"sort": "id", "limit": 2})).json()

    response = await client.get(
        "/accounts", params={"sort": "balance", "cursor": first["next_cursor"]}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


async def test_summary_counts_accounts_and_totals_balances_per_currency(
    client: Client, expected: Models
) -> None:
    totals: dict[str, Decimal] = {}
    for row in expected.balances.values():
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + Decimal(row["balance"])

    body = (await client.get("/summary")).json()

    assert body == {
        "accounts": 23,
        "open_accounts": sum(row["status"] == "open" for row in expected.balances.values()),
        "balances_by_currency": {c: str(v) for c, v in sorted(totals.items())},
        "events_projected": sum(len(e) for e in expected.statements.values()),
    }


async def test_projections_report_checkpoint_head_and_lag(
    client: Client, projected_settings: tuple[Settings, int, Models], rdb: redis.Redis
) -> None:
    settings, head, _ = projected_settings
    rdb.set(ReadModelKeys(settings.redis.prefix).head, head + 5)  # as a publisher would announce

    body = (await client.get("/projections")).json()

    assert [(p["name"], p["checkpoint"], p["head"], p["lag"]) for p in body] == [
        ("balances", head, head + 5, 5),
        ("statements", head, head + 5, 5),
    ]
    assert all(p["last_advanced_at"] for p in body)


async def test_min_position_waits_for_the_projection_to_apply_the_write(
    projected_settings: tuple[Settings, int, Models], expected: Models
) -> None:
    settings, head, _ = projected_settings
    async with http_client(create_query_app(settings)) as client:
        params = {"min_position": head + 1, "wait_ms": 10_000}
        request = asyncio.create_task(client.get("/accounts/acct-00002/balance", params=params))
        engine = create_async_store_engine(settings.store.database_url)
        version = expected.balances["acct-00002"]["version"]
        deposit = NewEvent.from_domain(MoneyDeposited(Decimal("1.00")))
        written = await EventStore(engine).append("acct-00002", [deposit], version)
        await engine.dispose()
        assert not request.done()  # the event did not exist when the request was made
        await run_catch_up(settings)

        response = await request

    assert response.status_code == 200
    assert response.json()["position"] == written.last_position
    balance_before = Decimal(expected.balances["acct-00002"]["balance"])
    assert Decimal(response.json()["balance"]) == balance_before + 1


async def test_min_position_not_reached_in_time_is_503_projection_behind_with_retry_after(
    client: Client, projected_settings: tuple[Settings, int, Models]
) -> None:
    head = projected_settings[1]

    response = await client.get(
        "/accounts/acct-00002/statement", params={"min_position": head + 1, "wait_ms": 30}
    )

    assert response.status_code == 503
    assert response.json()["error"] == "projection_behind"
    assert int(response.headers["retry-after"]) >= 1


async def test_health_is_200_when_redis_answers(client: Client) -> None:
    response = await client.get("/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_redis_down_is_503_redis_unavailable(settings: Settings) -> None:
    unreachable = make_settings(settings, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app=create_query_app(unreachable)) as client:
        for path in ("/health", "/accounts/acct-00001/balance", "/summary"):
            response = await client.get(path)
            assert response.status_code == 503, path
            assert response.json()["error"] == "redis_unavailable"


async def test_an_unknown_route_answers_in_the_same_error_shape(client: Client) -> None:
    response = await client.get("/nowhere")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_an_account_id_the_write_side_would_refuse_is_404_even_if_a_model_holds_it(
    settings: Settings,
) -> None:
    """Before one rule owned account ids, "nl1\\n" could be opened (Python's `$` matched before
    the final newline). Such a stream may sit in the store and its read models; the query API
    applies the same rule as the write side and does not serve it."""
    engine = create_async_store_engine(settings.store.database_url)
    try:
        for stream in ("nl1\n", "nl1"):
            opened = NewEvent.from_domain(AccountOpened(owner="N", currency="USD"))
            await EventStore(engine).append(stream, [opened], 0)
    finally:
        await engine.dispose()
    await run_catch_up(settings)

    async with AsyncTestClient(app=create_query_app(settings)) as client:
        for view in ("balance", "statement"):
            refused = await client.get(f"/accounts/nl1%0A/{view}")
            served = await client.get(f"/accounts/nl1/{view}")

            assert refused.status_code == 404, refused.text
            assert refused.json()["error"] == "account_not_found"
            assert served.status_code == 200, served.text
