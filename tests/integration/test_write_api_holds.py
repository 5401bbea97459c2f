"""Holds (two-phase transfers) over HTTP, on SQLite and PostgreSQL: placing, capturing, voiding,
expiring at capture time, every refusal, and what holds do to withdrawals, transfers and closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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


def hold(amount: str = "30.00", **fields: Any) -> dict[str, Any]:
    return {"from_account": "alice", "to_account": "bob", "amount": amount, **fields}


@pytest.fixture
async def alice_and_bob(client: Client) -> Client:
    await open_account(client, "alice", "100.00")
    await open_account(client, "bob")
    return client


async def place(client: Client, **fields: Any) -> dict[str, Any]:
    response = await client.post("/holds", json=hold(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def types_after(client: Client, position: int) -> list[tuple[str, str]]:
    return [(e.stream_id, e.type) for e in await store_of(client).read_after(position)]


# --- placing ------------------------------------------------------------------------------------


async def test_a_hold_reserves_the_amount_without_moving_the_balance(alice_and_bob: Client) -> None:
    client = alice_and_bob
    head = await store_of(client).head_position()
    before = datetime.now(UTC)

    body = await place(client, hold_id="h-1", reference="order 7", expires_in_s=60)

    assert body["position"] == await store_of(client).head_position()
    assert {k: body[k] for k in ("hold_id", "status", "amount")} == {
        "hold_id": "h-1",
        "status": "pending",
        "amount": "30.00",
    }
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(seconds=60) <= expires_at <= datetime.now(UTC) + timedelta(seconds=60)
    assert body["from"] == {
        "account_id": "alice",
        "version": 3,
        "balance": "100.00",
        "held": "30.00",
        "available": "70.00",
    }
    assert body["to"] == {
        "account_id": "bob",
        "version": 2,
        "balance": "0.00",
        "held": "0.00",
        "available": "0.00",
    }
    sent, received = await store_of(client).read_after(head)
    assert (sent.stream_id, sent.type, received.stream_id, received.type) == (
        "alice",
        "HoldPlaced",
        "bob",
        "HoldPlaced",
    )
    assert sent.payload["side"] == "from"
    assert received.payload["side"] == "to"
    assert sent.payload["reference"] == "order 7"
    assert sent.metadata["tx"] == received.metadata["tx"]


async def test_the_default_expiry_is_an_hour(alice_and_bob: Client) -> None:
    body = await place(alice_and_bob)

    expires_at = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert body["hold_id"]


async def test_held_money_cannot_be_withdrawn_transferred_or_held_again(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    await place(client, amount="80.00")
    head = await store_of(client).head_position()

    withdrawal = await client.post("/accounts/alice/withdraw", json={"amount": "20.01"})
    transfer = await client.post(
        "/transfers", json={"from_account": "alice", "to_account": "bob", "amount": "20.01"}
    )
    second = await client.post("/holds", json=hold("20.01"))
    limit = await client.post("/accounts/alice/overdraft-limit", json={"overdraft_limit": "0"})

    assert_error(withdrawal, 409, "insufficient_funds")
    assert "held" in withdrawal.json()["detail"]
    assert_error(transfer, 409, "insufficient_funds")
    assert_error(second, 409, "insufficient_funds")
    assert limit.status_code == 200  # the limit stays 0, which still covers what is held
    assert await store_of(client).head_position() == head + 1
    allowed = await client.post("/accounts/alice/withdraw", json={"amount": "20.00"})
    assert allowed.json()["balance"] == "80.00"


async def test_a_limit_that_would_not_cover_what_is_held_is_refused(alice_and_bob: Client) -> None:
    client = alice_and_bob
    await client.post("/accounts/alice/overdraft-limit", json={"overdraft_limit": "50.00"})
    await place(client, amount="130.00")

    refused = await client.post(
        "/accounts/alice/overdraft-limit", json={"overdraft_limit": "29.99"}
    )

    assert_error(refused, 409, "limit_below_balance")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (hold(to_account="nobody"), 404, "account_not_found"),
        (hold(from_account="nobody"), 404, "account_not_found"),
        (hold(to_account="alice"), 422, "same_account"),
        (hold(to_account="closed"), 409, "account_closed"),
        (hold(to_account="euro"), 409, "currency_mismatch"),
        (hold("100.01"), 409, "insufficient_funds"),
        (hold("0"), 422, "validation_error"),
        (hold(expires_in_s=0), 400, "validation_error"),
        (hold(expires_in_s=604801), 400, "validation_error"),
        (hold(expires_in_s="60"), 400, "validation_error"),
        (hold(reference="x" * 141), 400, "validation_error"),
        (hold(hold_id="no spaces"), 400, "validation_error"),
        (hold(hold_id="x" * 65), 400, "validation_error"),
        (hold(colour="red"), 400, "validation_error"),
    ],
)
async def test_a_refused_hold_answers_its_code_and_appends_nothing(
    alice_and_bob: Client, body: dict[str, Any], status: int, code: str
) -> None:
    client = alice_and_bob
    await open_account(client, "closed")
    assert (await client.post("/accounts/closed/close")).status_code == 200
    await open_account(client, "euro", currency="EUR")
    head = await store_of(client).head_position()

    response = await client.post("/holds", json=body)

    assert_error(response, status, code)
    assert await store_of(client).head_position() == head


async def test_the_longest_expiry_is_a_week(alice_and_bob: Client) -> None:
    body = await place(alice_and_bob, expires_in_s=604800)

    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC) + timedelta(days=6)


async def test_a_retry_with_the_same_hold_id_and_body_gets_the_first_answer_and_appends_nothing(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    first = await place(client, hold_id="h-1")
    head = await store_of(client).head_position()

    retry = await client.post("/holds", json=hold(hold_id="h-1"))

    assert (retry.status_code, retry.json()) == (201, first)
    assert await store_of(client).head_position() == head


async def test_the_same_hold_id_with_another_body_or_a_transfers_id_is_409_hold_exists(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1")
    transfer = {
        "from_account": "alice",
        "to_account": "bob",
        "amount": "1.00",
        "transfer_id": "t-1",
    }
    assert (await client.post("/transfers", json=transfer)).status_code == 201
    head = await store_of(client).head_position()

    other_body = await client.post("/holds", json=hold("5.00", hold_id="h-1"))
    transfers_id = await client.post("/holds", json=hold(hold_id="t-1"))
    transfer_with_holds_id = await client.post(
        "/transfers", json={**transfer, "transfer_id": "h-1"}
    )

    assert_error(other_body, 409, "hold_exists")
    assert_error(transfers_id, 409, "hold_exists")
    assert "transfer" in transfers_id.json()["detail"]
    assert_error(transfer_with_holds_id, 409, "transfer_exists")
    assert await store_of(client).head_position() == head


async def test_an_idempotency_key_on_a_hold_without_an_id_places_it_once(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    key = {"Idempotency-Key": "hold-1"}
    first = await client.post("/holds", json=hold(), headers=key)
    head = await store_of(client).head_position()

    retry = await client.post("/holds", json=hold(), headers=key)

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert await store_of(client).head_position() == head


# --- capturing and voiding ----------------------------------------------------------------------


async def test_a_full_capture_posts_a_transfer_with_the_holds_id(alice_and_bob: Client) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1", reference="order 7")
    head = await store_of(client).head_position()

    response = await client.post("/holds/h-1/capture")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "hold_id": "h-1",
        "status": "captured",
        "captured_amount": "30.00",
        "released_amount": "0.00",
        "position": await store_of(client).head_position(),
        "from": {
            "account_id": "alice",
            "version": 5,
            "balance": "70.00",
            "held": "0.00",
            "available": "70.00",
        },
        "to": {
            "account_id": "bob",
            "version": 4,
            "balance": "30.00",
            "held": "0.00",
            "available": "30.00",
        },
    }
    events = await store_of(client).read_after(head)
    assert [(e.stream_id, e.type) for e in events] == [
        ("alice", "TransferSent"),
        ("alice", "HoldCaptured"),
        ("bob", "TransferReceived"),
        ("bob", "HoldCaptured"),
    ]
    assert events[0].payload == {
        "transfer_id": "h-1",
        "counterparty": "bob",
        "amount": "30.00",
        "reference": "order 7",
    }


async def test_a_partial_capture_moves_that_amount_and_releases_the_rest(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1")

    response = await client.post("/holds/h-1/capture", json={"amount": "12.50"})

    body = response.json()
    assert (body["captured_amount"], body["released_amount"]) == ("12.50", "17.50")
    assert body["from"]["balance"] == body["from"]["available"] == "87.50"
    assert body["to"]["balance"] == "12.50"


async def test_a_void_releases_everything_and_moves_nothing(alice_and_bob: Client) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1")
    head = await store_of(client).head_position()

    response = await client.post("/holds/h-1/void")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["captured_amount"], body["released_amount"]) == (
        "voided",
        "0.00",
        "30.00",
    )
    assert body["from"]["balance"] == body["from"]["available"] == "100.00"
    assert await types_after(client, head) == [("alice", "HoldVoided"), ("bob", "HoldVoided")]


async def test_a_resolved_hold_cannot_be_resolved_again(alice_and_bob: Client) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1")
    await place(client, hold_id="h-2")
    assert (await client.post("/holds/h-1/capture")).status_code == 200
    assert (await client.post("/holds/h-2/void")).status_code == 200
    head = await store_of(client).head_position()

    answers = [
        await client.post("/holds/h-1/capture"),
        await client.post("/holds/h-1/void"),
        await client.post("/holds/h-2/capture", json={"amount": "1.00"}),
        await client.post("/holds/h-2/void"),
    ]

    for response, status in zip(answers, ["captured", "captured", "voided", "voided"], strict=True):
        assert_error(response, 409, "hold_not_pending")
        assert response.json()["status"] == status
    assert await store_of(client).head_position() == head


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/holds/h-1/capture", {"amount": "30.01"}, 422, "amount_exceeds_hold"),
        ("/holds/h-1/capture", {"amount": "0"}, 422, "validation_error"),
        ("/holds/h-1/capture", {"amount": True}, 400, "validation_error"),
        ("/holds/h-1/capture", {"amount": "1", "x": 1}, 400, "validation_error"),
        ("/holds/nope/capture", None, 404, "hold_not_found"),
        ("/holds/nope/void", None, 404, "hold_not_found"),
        ("/holds/t-1/capture", None, 404, "hold_not_found"),
        ("/holds/no%20such/void", None, 404, "hold_not_found"),
    ],
)
async def test_a_refused_capture_or_void_answers_its_code_and_appends_nothing(
    alice_and_bob: Client, path: str, body: dict[str, Any] | None, status: int, code: str
) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1")
    transfer = {
        "from_account": "alice",
        "to_account": "bob",
        "amount": "1.00",
        "transfer_id": "t-1",
    }
    assert (await client.post("/transfers", json=transfer)).status_code == 201
    head = await store_of(client).head_position()

    response = await client.post(path, json=body) if body else await client.post(path)

    assert_error(response, status, code)
    assert await store_of(client).head_position() == head


async def test_an_idempotency_key_answers_a_retried_capture_with_its_first_answer(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    await place(client, hold_id="h-1")
    key = {"Idempotency-Key": "capture-1"}
    first = await client.post("/holds/h-1/capture", json={"amount": "10"}, headers=key)
    head = await store_of(client).head_position()

    retry = await client.post("/holds/h-1/capture", json={"amount": "10"}, headers=key)
    keyless = await client.post("/holds/h-1/capture", json={"amount": "10"})

    assert (retry.status_code, retry.json()) == (200, first.json())
    assert_error(keyless, 409, "hold_not_pending")
    assert await store_of(client).head_position() == head


# --- expiry at capture time, and closing --------------------------------------------------------


async def wait_until_due(body: dict[str, Any]) -> None:
    expires_at = datetime.fromisoformat(body["expires_at"])
    while datetime.now(UTC) < expires_at:
        await asyncio.sleep(0.05)


async def test_a_capture_or_void_after_the_deadline_expires_the_hold_once_and_is_409(
    alice_and_bob: Client,
) -> None:
    client = alice_and_bob
    body = await place(client, hold_id="h-1", expires_in_s=1)
    await wait_until_due(body)
    head = await store_of(client).head_position()

    capture = await client.post("/holds/h-1/capture")
    void = await client.post("/holds/h-1/void")

    for response in (capture, void):
        assert_error(response, 409, "hold_not_pending")
        assert response.json()["status"] == "expired"
    events = await store_of(client).read_after(head)
    assert [(e.stream_id, e.type) for e in events] == [
        ("alice", "HoldExpired"),
        ("bob", "HoldExpired"),
    ]
    assert events[0].payload["amount"] == "30.00"
    # appended by the client's capture, which found the hold due: not one of the system's expiries
    assert [e.metadata["command"] for e in events] == ["CaptureHold", "CaptureHold"]
    assert all(e.metadata.get("actor") != "system" for e in events)
    released = await client.post("/accounts/alice/withdraw", json={"amount": "100.00"})
    assert released.status_code == 200


@pytest.mark.parametrize("account", ["alice", "bob"])
async def test_an_account_in_a_pending_hold_on_either_side_cannot_close_until_it_is_resolved(
    client: Client, account: str
) -> None:
    await open_account(client, "alice")  # a zero balance, so only the hold keeps her open
    await client.post("/accounts/alice/overdraft-limit", json={"overdraft_limit": "30.00"})
    await open_account(client, "bob")
    await place(client, hold_id="h-1")
    head = await store_of(client).head_position()

    refused = await client.post(f"/accounts/{account}/close")

    assert_error(refused, 409, "pending_holds")
    assert await store_of(client).head_position() == head
    assert (await client.post("/holds/h-1/void")).status_code == 200
    assert (await client.post(f"/accounts/{account}/close")).status_code == 200
