"""Reversing transfers over HTTP, on SQLite and PostgreSQL: a new transfer moving the amount back,
recorded once, refused with its code (and nothing appended) when it cannot be made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from kernel.events import RecordedEvent
from tests.integration.test_write_api_transfers import open_account, transfer
from tests.integration.write_api_client import assert_error, racing_client, store_of, write_api
from write_side.domain.reversal import reversal_id

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[Client]:
    async with write_api(store_url) as client:
        yield client


@pytest.fixture
async def paid(client: Client) -> Client:
    """alice (100.00) paid bob 30.00 in transfer t-1."""
    await open_account(client, "alice", "100.00")
    await open_account(client, "bob")
    sent = await client.post("/transfers", json=transfer("30.00", transfer_id="t-1"))
    assert sent.status_code == 201, sent.text
    return client


async def balance(client: Client, account_id: str) -> str:
    events = (await client.get(f"/accounts/{account_id}/events")).json()["events"]
    total = 0
    for event in events:
        amount = int(event["payload"].get("amount", "0").replace(".", ""))
        total += -amount if event["type"] in ("MoneyWithdrawn", "TransferSent") else amount
    return f"{total / 100:.2f}"


async def events_after(client: Client, position: int) -> list[RecordedEvent]:
    return await store_of(client).read_after(position)


async def test_a_reversal_moves_the_amount_back_as_a_new_transfer_naming_the_original(
    paid: Client,
) -> None:
    client = paid
    head = await store_of(client).head_position()

    response = await client.post("/transfers/t-1/reverse", json={"reference": "refund"})

    assert response.status_code == 201, response.text
    assert response.json() == {
        "transfer_id": "t-1.reversal",
        "status": "posted",
        "reversal_of": "t-1",
        "position": await store_of(client).head_position(),
        "from": {"account_id": "bob", "version": 3, "balance": "0.00"},
        "to": {"account_id": "alice", "version": 4, "balance": "100.00"},
    }
    sent, received = await events_after(client, head)
    assert (sent.stream_id, sent.type, received.stream_id, received.type) == (
        "bob",
        "TransferSent",
        "alice",
        "TransferReceived",
    )
    assert sent.payload == {
        "transfer_id": "t-1.reversal",
        "counterparty": "alice",
        "amount": "30.00",
        "reference": "refund",
        "reversal_of": "t-1",
    }
    assert received.payload["reversal_of"] == "t-1"
    assert sent.metadata["tx"] == received.metadata["tx"]
    assert (await balance(client, "alice"), await balance(client, "bob")) == ("100.00", "0.00")


async def test_the_body_is_optional_and_the_original_keeps_its_events(paid: Client) -> None:
    client = paid
    before = [e.payload for e in await events_after(client, 0)]

    response = await client.post("/transfers/t-1/reverse")

    assert response.status_code == 201, response.text
    assert [e.payload for e in await events_after(client, 0)][: len(before)] == before
    assert "reference" not in (await events_after(client, 0))[-1].payload


async def test_a_retry_with_the_same_body_gets_the_first_answer_and_appends_nothing(
    paid: Client,
) -> None:
    client = paid
    first = await client.post("/transfers/t-1/reverse", json={"reference": "refund"})
    head = await store_of(client).head_position()

    retry = await client.post("/transfers/t-1/reverse", json={"reference": "refund"})

    assert (retry.status_code, retry.json()) == (201, first.json())
    assert await store_of(client).head_position() == head


async def test_a_second_reversal_with_another_body_is_409_already_reversed(paid: Client) -> None:
    client = paid
    await client.post("/transfers/t-1/reverse", json={"reference": "refund"})
    await client.post("/accounts/bob/deposit", json={"amount": "500.00"})  # funds are not the issue
    head = await store_of(client).head_position()

    other = await client.post("/transfers/t-1/reverse", json={"reference": "again"})
    bare = await client.post("/transfers/t-1/reverse")

    assert_error(other, 409, "already_reversed")
    assert_error(bare, 409, "already_reversed")
    assert await store_of(client).head_position() == head


async def test_a_reversal_is_not_reversible(paid: Client) -> None:
    client = paid
    await client.post("/transfers/t-1/reverse")
    head = await store_of(client).head_position()

    response = await client.post("/transfers/t-1.reversal/reverse")

    assert_error(response, 409, "not_reversible")
    assert await store_of(client).head_position() == head


async def test_the_receiver_must_still_have_the_money(paid: Client) -> None:
    client = paid
    await client.post("/accounts/bob/withdraw", json={"amount": "0.01"})
    head = await store_of(client).head_position()

    response = await client.post("/transfers/t-1/reverse")

    assert_error(response, 409, "insufficient_funds")
    assert await store_of(client).head_position() == head
    allowed = await client.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": "0.01"})
    assert allowed.status_code == 200
    assert (await client.post("/transfers/t-1/reverse")).status_code == 201  # the limit counts


@pytest.mark.parametrize("closing", ["alice", "bob"])
async def test_a_closed_account_on_either_side_is_409_account_closed(
    paid: Client, closing: str
) -> None:
    client = paid
    leftover = {"alice": "70.00", "bob": "30.00"}[closing]
    await client.post(f"/accounts/{closing}/withdraw", json={"amount": leftover})
    assert (await client.post(f"/accounts/{closing}/close")).status_code == 200
    head = await store_of(client).head_position()

    response = await client.post("/transfers/t-1/reverse")

    assert_error(response, 409, "account_closed")
    assert await store_of(client).head_position() == head


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/transfers/nothing-like-it/reverse", None, 404, "transfer_not_found"),
        ("/transfers/no%20spaces/reverse", None, 404, "transfer_not_found"),
        ("/transfers/" + "x" * 65 + "/reverse", None, 404, "transfer_not_found"),
        ("/transfers/t-1/reverse", {"reference": "x" * 141}, 400, "validation_error"),
        ("/transfers/t-1/reverse", {"reference": "a\nb"}, 422, "validation_error"),
        ("/transfers/t-1/reverse", {"amount": "1.00"}, 400, "validation_error"),
        ("/transfers/t-1/reverse", [], 400, "validation_error"),
    ],
)
async def test_a_refused_reversal_answers_its_code_and_appends_nothing(
    paid: Client, path: str, body: Any, status: int, code: str
) -> None:
    client = paid
    head = await store_of(client).head_position()

    response = await client.post(path, json=body)

    assert_error(response, status, code)
    assert await store_of(client).head_position() == head


async def test_no_client_can_take_the_reversal_id_first(paid: Client) -> None:
    client = paid
    squatter = transfer("1.00", from_account="bob", to_account="alice", transfer_id="t-1.reversal")

    refused = await client.post("/transfers", json=squatter)
    reversed_ = await client.post("/transfers/t-1/reverse")

    assert_error(refused, 400, "validation_error")
    assert reversed_.status_code == 201, reversed_.text


async def test_the_longest_transfer_id_gets_a_reversal_id_the_store_can_hold(
    client: Client,
) -> None:
    await open_account(client, "alice", "10.00")
    await open_account(client, "bob")
    long_id = "t" * 64
    await client.post("/transfers", json=transfer("1.00", transfer_id=long_id))

    response = await client.post(f"/transfers/{long_id}/reverse")

    assert response.status_code == 201, response.text
    assert response.json()["transfer_id"] == reversal_id(long_id)
    assert len(reversal_id(long_id)) <= 64
    assert response.json()["reversal_of"] == long_id


async def test_a_transfer_made_in_a_batch_can_be_reversed(client: Client) -> None:
    await open_account(client, "alice", "10.00")
    await open_account(client, "bob")
    item = {"type": "transfer", **transfer("4.00", transfer_id="b-1")}
    deposit = {"type": "deposit", "account_id": "alice", "amount": "1.00"}
    assert (await client.post("/batches", json={"commands": [deposit, item]})).status_code == 200

    response = await client.post("/transfers/b-1/reverse")

    assert response.status_code == 201, response.text
    assert response.json()["to"] == {"account_id": "alice", "version": 5, "balance": "11.00"}


async def test_a_captured_holds_transfer_can_be_reversed_and_an_uncaptured_hold_has_none(
    client: Client,
) -> None:
    await open_account(client, "alice", "10.00")
    await open_account(client, "bob")
    for hold_id in ("h-1", "h-2"):
        body = {"from_account": "alice", "to_account": "bob", "amount": "3.00", "hold_id": hold_id}
        assert (await client.post("/holds", json=body)).status_code == 201
    captured = await client.post("/holds/h-1/capture", json={"amount": "2.50"})
    assert captured.status_code == 200, captured.text
    head = await store_of(client).head_position()

    pending = await client.post("/transfers/h-2/reverse")
    assert_error(pending, 404, "transfer_not_found")
    resolution = await client.post("/transfers/h-1.resolution/reverse")
    assert_error(resolution, 404, "transfer_not_found")
    assert "h-1.resolution' does not exist" in resolution.json()["detail"]
    assert await events_after(client, head) == []

    response = await client.post("/transfers/h-1/reverse", json={"reference": "refund"})

    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["reversal_of"] == "h-1"
    assert (answer["from"]["account_id"], answer["from"]["balance"]) == ("bob", "0.00")
    assert (answer["to"]["account_id"], answer["to"]["balance"]) == ("alice", "10.00")
    again = await client.post("/transfers/h-1/reverse", json={"reference": "other"})
    assert_error(again, 409, "already_reversed")


async def test_an_idempotency_key_answers_its_first_reversal_and_refuses_another_body(
    paid: Client,
) -> None:
    client = paid
    key = {"Idempotency-Key": "undo-1"}
    first = await client.post("/transfers/t-1/reverse", json={"reference": "r"}, headers=key)
    head = await store_of(client).head_position()

    retry = await client.post("/transfers/t-1/reverse", json={"reference": "r"}, headers=key)
    other = await client.post("/transfers/t-1/reverse", json={"reference": "s"}, headers=key)

    assert first.status_code == 201, first.text
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert_error(other, 422, "idempotency_key_reused")
    assert await store_of(client).head_position() == head


async def test_racing_reversals_of_one_transfer_record_exactly_one(paid: Client) -> None:
    client = paid
    bodies = [{"reference": "same"}] * 4 + [{"reference": f"other {n}"} for n in range(4)]

    async with racing_client(client) as racing, asyncio.timeout(60):
        responses = await asyncio.gather(
            *(racing.post("/transfers/t-1/reverse", json=body) for body in bodies)
        )

    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 409} <= {"already_reversed"}
    accepted = [
        (body, r.json()) for body, r in zip(bodies, responses, strict=True) if r.status_code == 201
    ]
    assert accepted
    assert len({body["reference"] for body, _ in accepted}) == 1  # one winner; its retries agree
    assert len({str(answer) for _, answer in accepted}) == 1
    reversals = [e for e in await events_after(client, 0) if e.payload.get("reversal_of") == "t-1"]
    assert [e.type for e in reversals] == ["TransferSent", "TransferReceived"]
    assert (await balance(client, "alice"), await balance(client, "bob")) == ("100.00", "0.00")
