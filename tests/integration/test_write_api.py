"""The write API's contract, endpoint by endpoint, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from auth.key_store import create_key
from tests.integration.write_api_client import assert_error, store_of, write_api
from tests.support import age_command_records
from write_side.store.database import create_sync_store_engine

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[Client]:
    async with write_api(store_url) as client:
        yield client


async def open_account(client: Client, account_id: str = "acc-1", balance: str = "0") -> None:
    response = await client.post("/accounts", json={"owner": "Ada", "account_id": account_id})
    assert response.status_code == 201, response.text
    if balance != "0":
        deposited = await client.post(f"/accounts/{account_id}/deposit", json={"amount": balance})
        assert deposited.status_code == 200, deposited.text


# --- opening ------------------------------------------------------------------------------------


async def test_opening_an_account_answers_201_with_its_id_version_and_position(
    client: Client,
) -> None:
    response = await client.post(
        "/accounts", json={"owner": "Ada", "currency": "EUR", "account_id": "acc-1"}
    )

    assert response.status_code == 201
    head = await store_of(client).head_position()
    assert response.json() == {"account_id": "acc-1", "version": 1, "position": head}


async def test_an_account_id_is_generated_when_absent_and_currency_defaults_to_usd(
    client: Client,
) -> None:
    first = await client.post("/accounts", json={"owner": "Ada"})
    second = await client.post("/accounts", json={"owner": "Ada"})

    account_id = first.json()["account_id"]
    assert first.status_code == second.status_code == 201
    assert account_id != second.json()["account_id"]
    (opened,) = await store_of(client).read_stream(account_id)
    assert opened.payload == {"owner": "Ada", "currency": "USD"}


async def test_opening_an_existing_account_id_is_409_account_exists(client: Client) -> None:
    await open_account(client)
    head = await store_of(client).head_position()

    response = await client.post("/accounts", json={"owner": "Eve", "account_id": "acc-1"})

    assert_error(response, 409, "account_exists")
    assert await store_of(client).head_position() == head


# --- deposits and withdrawals -------------------------------------------------------------------


async def test_a_deposit_answers_the_new_balance_as_a_string(client: Client) -> None:
    await open_account(client)

    response = await client.post("/accounts/acc-1/deposit", json={"amount": "12.50"})

    assert response.status_code == 200
    assert response.json() == {
        "account_id": "acc-1",
        "version": 2,
        "position": await store_of(client).head_position(),
        "balance": "12.50",
    }


async def test_an_amount_may_be_a_json_number_and_stays_exact(client: Client) -> None:
    await open_account(client)

    await client.post("/accounts/acc-1/deposit", json={"amount": 0.07})  # not 0.0700000000000000066
    await client.post("/accounts/acc-1/deposit", json={"amount": 12.5})
    response = await client.post("/accounts/acc-1/deposit", json={"amount": 3})

    assert response.json()["balance"] == "15.57"
    amounts = [e.payload.get("amount") for e in await store_of(client).read_stream("acc-1")]
    assert amounts == [None, "0.07", "12.50", "3.00"]


async def test_a_withdrawal_answers_the_new_balance(client: Client) -> None:
    await open_account(client, balance="100.00")

    response = await client.post("/accounts/acc-1/withdraw", json={"amount": "30.01"})

    assert response.status_code == 200
    assert response.json() == {
        "account_id": "acc-1",
        "version": 3,
        "position": await store_of(client).head_position(),
        "balance": "69.99",
    }


async def test_a_reference_is_kept_on_the_deposit_and_withdrawal_events(client: Client) -> None:
    await open_account(client)
    body = {"amount": "5.00", "reference": "invoice 2026-114"}
    assert (await client.post("/accounts/acc-1/deposit", json=body)).status_code == 200
    body = {"amount": "1.00", "reference": "fee"}
    assert (await client.post("/accounts/acc-1/withdraw", json=body)).status_code == 200
    too_long = {"amount": "1.00", "reference": "x" * 141}
    refused = await client.post("/accounts/acc-1/deposit", json=too_long)

    assert refused.status_code == 400, refused.text
    events = (await store_of(client).read_stream("acc-1"))[1:]
    assert [e.payload.get("reference") for e in events] == ["invoice 2026-114", "fee"]


async def test_withdrawal_larger_than_balance_is_409_insufficient_funds(client: Client) -> None:
    await open_account(client, balance="10.00")
    head = await store_of(client).head_position()

    response = await client.post("/accounts/acc-1/withdraw", json={"amount": "10.01"})

    assert_error(response, 409, "insufficient_funds")
    assert await store_of(client).head_position() == head


# --- closing ------------------------------------------------------------------------------------


async def test_closing_an_account_with_zero_balance_answers_200(client: Client) -> None:
    await open_account(client)

    response = await client.post("/accounts/acc-1/close")

    assert response.status_code == 200
    assert response.json() == {
        "account_id": "acc-1",
        "version": 2,
        "position": await store_of(client).head_position(),
        "balance": "0.00",
    }


async def test_closing_an_account_with_money_is_409_balance_not_zero(client: Client) -> None:
    await open_account(client, balance="0.01")

    response = await client.post("/accounts/acc-1/close", json={})

    assert_error(response, 409, "balance_not_zero")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/accounts/acc-1/deposit", {"amount": "1.00"}),
        ("/accounts/acc-1/withdraw", {"amount": "1.00"}),
        ("/accounts/acc-1/close", {}),
    ],
)
async def test_a_closed_account_answers_409_account_closed(
    client: Client, path: str, body: dict[str, str]
) -> None:
    await open_account(client)
    await client.post("/accounts/acc-1/close")
    head = await store_of(client).head_position()

    response = await client.post(path, json=body)

    assert_error(response, 409, "account_closed")
    assert await store_of(client).head_position() == head


# --- expected_version ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/accounts/acc-1/deposit", {"amount": "1.00"}),
        ("/accounts/acc-1/withdraw", {"amount": "1.00"}),
        ("/accounts/acc-1/close", {}),
    ],
)
async def test_an_expected_version_on_any_body_is_checked(
    client: Client, path: str, body: dict[str, str]
) -> None:
    await open_account(client)
    await client.post("/accounts/acc-1/deposit", json={"amount": "2.00"})
    await client.post("/accounts/acc-1/withdraw", json={"amount": "1.00"})
    if path.endswith("/close"):
        await client.post("/accounts/acc-1/withdraw", json={"amount": "1.00"})
    head = await store_of(client).head_position()

    stale = await client.post(path, json={**body, "expected_version": 2})

    assert_error(stale, 409, "version_conflict")
    version = await store_of(client).stream_version("acc-1")
    assert stale.json()["current_version"] == version
    assert await store_of(client).head_position() == head
    current = await client.post(path, json={**body, "expected_version": version})
    assert current.status_code == 200, current.text
    assert current.json()["version"] == version + 1


async def test_opening_with_expected_version_zero_succeeds_and_any_other_conflicts(
    client: Client,
) -> None:
    conflict = await client.post(
        "/accounts", json={"owner": "Ada", "account_id": "acc-1", "expected_version": 1}
    )
    opened = await client.post(
        "/accounts", json={"owner": "Ada", "account_id": "acc-1", "expected_version": 0}
    )

    assert_error(conflict, 409, "version_conflict")
    assert opened.status_code == 201


# --- unknown accounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/accounts/nobody/deposit", {"amount": "1.00"}),
        ("POST", "/accounts/nobody/withdraw", {"amount": "1.00"}),
        ("POST", "/accounts/nobody/close", {}),
        ("GET", "/accounts/nobody/events", None),
    ],
)
async def test_an_unknown_account_is_404_account_not_found(
    client: Client, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await client.request(method, path, json=body)

    assert_error(response, 404, "account_not_found")
    assert await store_of(client).head_position() == 0


# --- idempotency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/accounts", {"owner": "Bob"}, 201),
        ("/accounts/acc-1/deposit", {"amount": "5.00"}, 200),
        ("/accounts/acc-1/withdraw", {"amount": "5.00"}, 200),
    ],
)
async def test_a_retry_with_the_same_idempotency_key_and_body_returns_the_first_response(
    client: Client, path: str, body: dict[str, str], status: int
) -> None:
    await open_account(client, balance="20.00")
    key = {"Idempotency-Key": "retry-me-1"}
    first = await client.post(path, json=body, headers=key)
    head = await store_of(client).head_position()

    retry = await client.post(path, json=body, headers=key)

    assert first.status_code == retry.status_code == status
    assert retry.json() == first.json()
    assert await store_of(client).head_position() == head


async def test_a_retried_close_returns_the_first_response(client: Client) -> None:
    await open_account(client)
    first = await client.post("/accounts/acc-1/close", headers={"Idempotency-Key": "close-1"})

    retry = await client.post("/accounts/acc-1/close", headers={"Idempotency-Key": "close-1"})

    assert retry.status_code == 200  # not 409 account_closed
    assert retry.json() == first.json()


async def test_the_same_idempotency_key_with_a_different_body_is_422_idempotency_key_reused(
    client: Client,
) -> None:
    await open_account(client, balance="20.00")
    key = {"Idempotency-Key": "k-1"}
    await client.post("/accounts/acc-1/deposit", json={"amount": "5.00"}, headers=key)
    head = await store_of(client).head_position()

    different_amount = await client.post(
        "/accounts/acc-1/deposit", json={"amount": "6.00"}, headers=key
    )
    different_command = await client.post(
        "/accounts/acc-1/withdraw", json={"amount": "5.00"}, headers=key
    )

    assert_error(different_amount, 422, "idempotency_key_reused")
    assert_error(different_command, 422, "idempotency_key_reused")
    assert await store_of(client).head_position() == head


async def test_idempotency_keys_survive_an_app_restart(store_url: str) -> None:
    key = {"Idempotency-Key": "survives-restart"}
    async with write_api(store_url) as before:
        await open_account(before, balance="20.00")
        first = await before.post("/accounts/acc-1/withdraw", json={"amount": "5"}, headers=key)

    async with write_api(store_url) as after:
        head = await store_of(after).head_position()
        retry = await after.post("/accounts/acc-1/withdraw", json={"amount": "5"}, headers=key)
        reused = await after.post("/accounts/acc-1/withdraw", json={"amount": "6"}, headers=key)

        assert retry.status_code == 200
        assert (
            retry.json()
            == first.json()
            == {
                "account_id": "acc-1",
                "version": 3,
                "position": 3,
                "balance": "15.00",
            }
        )
        assert_error(reused, 422, "idempotency_key_reused")
        assert await store_of(after).head_position() == head


# --- positions ----------------------------------------------------------------------------------


async def test_position_in_every_response_is_the_global_position_of_the_last_event(
    client: Client,
) -> None:
    responses = [
        await client.post("/accounts", json={"owner": "Ada", "account_id": "a"}),
        await client.post("/accounts", json={"owner": "Bob", "account_id": "b"}),
        await client.post("/accounts/a/deposit", json={"amount": "3.00"}),
        await client.post("/accounts/b/deposit", json={"amount": "4.00"}),
        await client.post("/accounts/a/withdraw", json={"amount": "3.00"}),
        await client.post("/accounts/a/close"),
    ]

    recorded = await store_of(client).read_after(0)
    assert [r.json()["position"] for r in responses] == [e.position for e in recorded]
    assert [(r.json()["account_id"], r.json()["version"]) for r in responses] == [
        (e.stream_id, e.version) for e in recorded
    ]


# --- the audit trail ----------------------------------------------------------------------------


async def test_the_events_endpoint_lists_the_account_history(client: Client) -> None:
    await open_account(client, balance="12.50")
    await open_account(client, "acc-2")
    await client.post("/accounts/acc-1/withdraw", json={"amount": "2.50"})

    response = await client.get("/accounts/acc-1/events", params={"after_version": 0, "limit": 100})

    assert response.status_code == 200
    body = response.json()
    assert body["account_id"] == "acc-1"
    stored = await store_of(client).read_stream("acc-1")
    assert [
        {k: e[k] for k in ("event_id", "type", "version", "position", "payload", "hash")}
        for e in body["events"]
    ] == [
        {
            "event_id": str(e.event_id),
            "type": e.type,
            "version": e.version,
            "position": e.position,
            "payload": e.payload,
            "hash": e.hash,
        }
        for e in stored
    ]
    assert [e["type"] for e in body["events"]] == [
        "AccountOpened",
        "MoneyDeposited",
        "MoneyWithdrawn",
    ]
    assert body["events"][1]["payload"] == {"amount": "12.50"}
    for event in body["events"]:
        assert set(event) == {
            "event_id",
            "type",
            "version",
            "position",
            "payload",
            "recorded_at",
            "hash",
        }
        assert len(event["hash"]) == 64
        assert datetime.fromisoformat(event["recorded_at"]).utcoffset() == timedelta(0)


async def test_the_events_endpoint_pages_with_after_version_and_limit(client: Client) -> None:
    await open_account(client)
    for _ in range(5):
        await client.post("/accounts/acc-1/deposit", json={"amount": "1"})

    page = await client.get("/accounts/acc-1/events", params={"after_version": 2, "limit": 3})
    rest = await client.get("/accounts/acc-1/events", params={"after_version": 5})
    past_the_end = await client.get("/accounts/acc-1/events", params={"after_version": 6})

    assert [e["version"] for e in page.json()["events"]] == [3, 4, 5]
    assert [e["version"] for e in rest.json()["events"]] == [6]
    assert past_the_end.status_code == 200
    assert past_the_end.json() == {"account_id": "acc-1", "events": []}


# --- health and documentation -------------------------------------------------------------------


async def test_health_is_200_when_the_event_store_answers(client: Client) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_the_openapi_schema_is_served_and_lists_every_endpoint(client: Client) -> None:
    response = await client.get("/schema/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) >= {
        "/accounts",
        "/accounts/{account_id}/deposit",
        "/accounts/{account_id}/withdraw",
        "/accounts/{account_id}/close",
        "/accounts/{account_id}/events",
        "/health",
    }


# --- idempotency keys belong to the API key that sent them -------------------------------------


def _two_write_keys(database_url: str) -> tuple[dict[str, str], dict[str, str]]:
    engine = create_sync_store_engine(database_url)
    try:
        with engine.begin() as conn:
            tokens = [create_key(conn, name, ["write"]) for name in ("alice", "bob")]
    finally:
        engine.dispose()
    alice, bob = ({"Authorization": f"Bearer {token}"} for token in tokens)
    return alice, bob


async def test_two_api_keys_sending_the_same_idempotency_key_make_two_commands(
    store_url: str,
) -> None:
    alice, bob = _two_write_keys(store_url)
    key = {"Idempotency-Key": "order-1"}
    async with write_api(store_url, auth_enabled=True) as client:
        await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"}, headers=alice)
        deposit = {"amount": "5.00"}

        by_alice = await client.post("/accounts/acc-1/deposit", json=deposit, headers=alice | key)
        by_bob = await client.post("/accounts/acc-1/deposit", json=deposit, headers=bob | key)
        bob_retry = await client.post("/accounts/acc-1/deposit", json=deposit, headers=bob | key)
        bob_other = await client.post(
            "/accounts/acc-1/withdraw", json={"amount": "1.00"}, headers=bob | key
        )

        assert (by_alice.status_code, by_bob.status_code) == (200, 200)
        assert (by_alice.json()["version"], by_bob.json()["version"]) == (2, 3)
        assert by_bob.json()["balance"] == "10.00"
        assert bob_retry.json() == by_bob.json()
        assert_error(bob_other, 422, "idempotency_key_reused")
        assert await store_of(client).stream_version("acc-1") == 3


async def test_another_api_key_may_use_a_key_with_a_different_body(store_url: str) -> None:
    alice, bob = _two_write_keys(store_url)
    key = {"Idempotency-Key": "order-1"}
    async with write_api(store_url, auth_enabled=True) as client:
        await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"}, headers=alice)
        await client.post("/accounts/acc-1/deposit", json={"amount": "5.00"}, headers=alice | key)

        by_bob = await client.post(
            "/accounts/acc-1/withdraw", json={"amount": "2.00"}, headers=bob | key
        )

        assert by_bob.status_code == 200, by_bob.text
        assert by_bob.json()["balance"] == "3.00"


async def test_an_idempotency_key_past_its_retention_is_a_new_command(store_url: str) -> None:
    key = {"Idempotency-Key": "order-1"}
    async with write_api(store_url, idempotency_retention=timedelta(hours=1)) as client:
        await open_account(client)
        first = await client.post("/accounts/acc-1/deposit", json={"amount": "5"}, headers=key)
        age_command_records(store_url, timedelta(hours=2))

        again = await client.post("/accounts/acc-1/deposit", json={"amount": "5"}, headers=key)

        assert (first.json()["version"], again.json()["version"]) == (2, 3)
        assert again.json()["balance"] == "10.00"
