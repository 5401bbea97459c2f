"""Transfers and overdraft limits over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.write_api_client import assert_error, store_of, write_api

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[Client]:
    async with write_api(store_url) as client:
        yield client


async def open_account(
    client: Client, account_id: str, balance: str = "0", currency: str = "USD"
) -> None:
    body = {"owner": "Ada", "account_id": account_id, "currency": currency}
    assert (await client.post("/accounts", json=body)).status_code == 201
    if balance != "0":
        deposited = await client.post(f"/accounts/{account_id}/deposit", json={"amount": balance})
        assert deposited.status_code == 200, deposited.text


def transfer(amount: str = "30.00", **fields: Any) -> dict[str, Any]:
    return {"from_account": "alice", "to_account": "bob", "amount": amount, **fields}


@pytest.fixture
async def alice_and_bob(client: Client) -> Client:
    await open_account(client, "alice", "100.00")
    await open_account(client, "bob")
    return client


# --- transfers ----------------------------------------------------------------------------------


async def test_a_transfer_answers_201_with_both_sides_and_records_both_in_one_transaction(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    body = transfer(transfer_id="t-1", reference="rent")

    response = await client.post("/transfers", json=body)

    assert response.status_code == 201, response.text
    head = await store_of(client).head_position()
    assert response.json() == {
        "transfer_id": "t-1",
        "status": "posted",
        "position": head,
        "from": {"account_id": "alice", "version": 3, "balance": "70.00"},
        "to": {"account_id": "bob", "version": 2, "balance": "30.00"},
    }
    sent, received = (await store_of(client).read_after(head - 2))[-2:]
    assert (sent.stream_id, sent.type, received.stream_id, received.type) == (
        "alice",
        "TransferSent",
        "bob",
        "TransferReceived",
    )
    assert sent.payload == {
        "transfer_id": "t-1",
        "counterparty": "bob",
        "amount": "30.00",
        "reference": "rent",
    }
    assert received.payload["counterparty"] == "alice"
    assert sent.metadata["tx"] == received.metadata["tx"]


async def test_a_transfer_id_is_generated_when_absent(alice_and_bob: Client) -> None:
    first = await alice_and_bob.post("/transfers", json=transfer("1.00"))
    second = await alice_and_bob.post("/transfers", json=transfer("1.00"))

    assert first.status_code == second.status_code == 201
    assert first.json()["transfer_id"] != second.json()["transfer_id"]
    assert second.json()["from"]["balance"] == "98.00"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (transfer(to_account="nobody"), 404, "account_not_found"),
        (transfer(from_account="nobody"), 404, "account_not_found"),
        (transfer(to_account="alice"), 422, "same_account"),
        (transfer(to_account="closed"), 409, "account_closed"),
        (transfer(to_account="euro"), 409, "currency_mismatch"),
        (transfer("100.01"), 409, "insufficient_funds"),
        (transfer("0"), 422, "validation_error"),
        (transfer(reference="x" * 141), 400, "validation_error"),
        (transfer(transfer_id="no spaces"), 400, "validation_error"),
    ],
)
async def test_a_refused_transfer_answers_its_code_and_appends_nothing(
    alice_and_bob: Client, body: dict[str, Any], status: int, code: str
) -> None:
    client = alice_and_bob
    await open_account(client, "closed")
    assert (await client.post("/accounts/closed/close")).status_code == 200
    await open_account(client, "euro", currency="EUR")
    head = await store_of(client).head_position()

    response = await client.post("/transfers", json=body)

    assert_error(response, status, code)
    assert await store_of(client).head_position() == head


async def test_a_retry_with_the_same_transfer_id_and_body_gets_the_first_answer_and_appends_nothing(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    first = await client.post("/transfers", json=transfer(transfer_id="t-1"))
    head = await store_of(client).head_position()

    retry = await client.post("/transfers", json=transfer(transfer_id="t-1"))

    assert (retry.status_code, retry.json()) == (first.status_code, first.json())
    assert await store_of(client).head_position() == head


async def test_the_same_transfer_id_with_another_body_is_409_transfer_exists(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    await client.post("/transfers", json=transfer(transfer_id="t-1"))
    head = await store_of(client).head_position()

    response = await client.post("/transfers", json=transfer("5.00", transfer_id="t-1"))

    assert_error(response, 409, "transfer_exists")
    assert await store_of(client).head_position() == head


async def test_an_idempotency_key_on_a_transfer_without_an_id_appends_it_once(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    key = {"Idempotency-Key": "pay-1"}
    first = await client.post("/transfers", json=transfer(), headers=key)
    head = await store_of(client).head_position()

    retry = await client.post("/transfers", json=transfer(), headers=key)
    other = await client.post("/transfers", json=transfer("1.00"), headers=key)

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert_error(other, 422, "idempotency_key_reused")
    assert await store_of(client).head_position() == head


# --- overdraft limits ---------------------------------------------------------------------------


async def test_an_overdraft_limit_lets_withdrawals_and_transfers_go_down_to_minus_the_limit(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    response = await client.post("/accounts/alice/overdraft-limit", json={"overdraft_limit": "50"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "account_id": "alice",
        "version": 3,
        "position": await store_of(client).head_position(),
        "balance": "100.00",
        "overdraft_limit": "50.00",
    }

    withdrawn = await client.post("/accounts/alice/withdraw", json={"amount": "120.00"})
    sent = await client.post("/transfers", json=transfer("30.00"))
    head = await store_of(client).head_position()
    too_far = await client.post("/transfers", json=transfer("0.01"))
    too_far_withdrawal = await client.post("/accounts/alice/withdraw", json={"amount": "0.01"})

    assert withdrawn.json()["balance"] == "-20.00"
    assert sent.json()["from"]["balance"] == "-50.00"
    assert_error(too_far, 409, "insufficient_funds")
    assert_error(too_far_withdrawal, 409, "insufficient_funds")
    assert await store_of(client).head_position() == head


async def test_without_a_limit_an_account_cannot_go_below_zero(alice_and_bob: Client) -> None:
    response = await alice_and_bob.post("/accounts/bob/withdraw", json={"amount": "0.01"})

    assert_error(response, 409, "insufficient_funds")


async def test_lowering_the_limit_below_the_current_debt_is_409_limit_below_balance(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    await client.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": "50.00"})
    await client.post("/accounts/bob/withdraw", json={"amount": "40.00"})
    head = await store_of(client).head_position()

    refused = await client.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": "39.99"})
    assert_error(refused, 409, "limit_below_balance")
    assert await store_of(client).head_position() == head

    allowed = await client.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": 40})
    assert allowed.json()["overdraft_limit"] == "40.00"


@pytest.mark.parametrize(
    ("path", "limit", "status", "code"),
    [
        ("/accounts/nobody/overdraft-limit", "1.00", 404, "account_not_found"),
        ("/accounts/alice/overdraft-limit", "-1.00", 422, "validation_error"),
        ("/accounts/alice/overdraft-limit", "1.001", 422, "validation_error"),
        ("/accounts/alice/overdraft-limit", True, 400, "validation_error"),
    ],
)
async def test_a_refused_overdraft_limit_answers_its_code(
    alice_and_bob: Client, path: str, limit: object, status: int, code: str
) -> None:
    response = await alice_and_bob.post(path, json={"overdraft_limit": limit})

    assert_error(response, status, code)


async def test_a_limit_of_zero_removes_the_overdraft(alice_and_bob: Client) -> None:
    client = alice_and_bob
    await client.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": "10.00"})

    response = await client.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": "0"})
    refused = await client.post("/accounts/bob/withdraw", json={"amount": "0.01"})

    assert response.json()["overdraft_limit"] == "0.00"
    assert_error(refused, 409, "insufficient_funds")
