"""Atomic batches over HTTP, on SQLite and PostgreSQL: all commands in one transaction, or none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.write_api_client import assert_error, store_of, write_api

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[Client]:
    async with write_api(store_url) as client:
        yield client


def open_(account_id: str, currency: str = "USD") -> dict[str, Any]:
    return {"type": "open_account", "owner": "Ada", "account_id": account_id, "currency": currency}


def deposit(account_id: str, amount: str) -> dict[str, Any]:
    return {"type": "deposit", "account_id": account_id, "amount": amount}


def withdraw(account_id: str, amount: str) -> dict[str, Any]:
    return {"type": "withdraw", "account_id": account_id, "amount": amount}


def transfer(source: str, target: str, amount: str) -> dict[str, Any]:
    return {"type": "transfer", "from_account": source, "to_account": target, "amount": amount}


def assert_batch_failed(response: httpx.Response, failed_index: int, code: str, size: int) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "batch_failed"
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["failed_index"] == failed_index
    assert body["results"] == [
        {"index": i, "error": code if i == failed_index else "linked_command_failed"}
        for i in range(size)
    ]


async def test_a_batch_applies_every_command_and_later_ones_see_the_earlier_ones(
    client: Client,
) -> None:
    commands = [
        open_("alice"),
        open_("bob"),
        deposit("alice", "100.00"),
        transfer("alice", "bob", "40.00"),
        withdraw("bob", "15.00"),
    ]

    response = await client.post("/batches", json={"commands": commands})

    assert response.status_code == 200, response.text
    head = await store_of(client).head_position()
    body = response.json()
    assert body["position"] == head
    opened_alice, opened_bob, deposited, transferred, withdrawn = body["results"]
    assert opened_alice == {"account_id": "alice", "version": 1, "position": head}
    assert opened_bob == {"account_id": "bob", "version": 1, "position": head}
    assert deposited == {"account_id": "alice", "version": 2, "position": head, "balance": "100.00"}
    assert transferred["status"] == "posted"
    assert transferred["from"] == {"account_id": "alice", "version": 3, "balance": "60.00"}
    assert transferred["to"] == {"account_id": "bob", "version": 2, "balance": "40.00"}
    assert withdrawn == {"account_id": "bob", "version": 3, "position": head, "balance": "25.00"}
    recorded = await store_of(client).read_after(0)
    assert len(recorded) == 6
    assert len({e.metadata["tx"] for e in recorded}) == 1


async def test_a_failing_command_fails_the_whole_batch_and_appends_nothing(
    client: Client,
) -> None:
    await client.post("/accounts", json={"owner": "Ada", "account_id": "alice"})
    head = await store_of(client).head_position()
    commands = [deposit("alice", "10.00"), open_("bob"), transfer("alice", "bob", "10.01")]

    response = await client.post("/batches", json={"commands": commands})

    assert_batch_failed(response, 2, "insufficient_funds", 3)
    assert await store_of(client).head_position() == head
    assert await store_of(client).stream_version("bob") == 0


@pytest.mark.parametrize(
    ("commands", "failed_index", "code"),
    [
        ([open_("carol"), open_("carol")], 1, "account_exists"),
        ([deposit("nobody", "1.00")], 0, "account_not_found"),
        ([open_("carol"), deposit("carol", "0")], 1, "validation_error"),
        ([open_("carol", "EUR"), transfer("alice", "carol", "1.00")], 1, "currency_mismatch"),
        ([transfer("alice", "alice", "1.00")], 0, "same_account"),
    ],
)
async def test_each_refusal_in_a_batch_carries_its_own_code(
    client: Client, commands: list[dict[str, Any]], failed_index: int, code: str
) -> None:
    await client.post("/batches", json={"commands": [open_("alice"), deposit("alice", "5.00")]})
    head = await store_of(client).head_position()

    response = await client.post("/batches", json={"commands": commands})

    assert_batch_failed(response, failed_index, code, len(commands))
    assert await store_of(client).head_position() == head


async def test_a_transfer_id_used_before_fails_the_batch_with_transfer_exists(
    client: Client,
) -> None:
    setup = [open_("alice"), open_("bob"), deposit("alice", "5.00")]
    await client.post("/batches", json={"commands": setup})
    body = {"from_account": "alice", "to_account": "bob", "amount": "1.00", "transfer_id": "t-1"}
    assert (await client.post("/transfers", json=body)).status_code == 201
    head = await store_of(client).head_position()

    again = {"type": "transfer", **body, "amount": "2.00"}
    response = await client.post("/batches", json={"commands": [deposit("bob", "1.00"), again]})

    assert_batch_failed(response, 1, "transfer_exists", 2)
    assert await store_of(client).head_position() == head


async def test_a_batch_of_101_commands_is_refused(client: Client) -> None:
    commands = [open_(f"acc-{n}") for n in range(101)]

    response = await client.post("/batches", json={"commands": commands})

    assert_error(response, 400, "validation_error")
    assert await store_of(client).head_position() == 0


async def test_a_batch_of_100_commands_with_references_fits_in_its_body_limit(
    client: Client,
) -> None:
    commands = [open_("alice")] + [
        {**deposit("alice", "1.00"), "reference": "r" * 140} for _ in range(99)
    ]

    response = await client.post("/batches", json={"commands": commands})

    assert response.status_code == 200, response.text
    assert response.json()["results"][-1]["balance"] == "99.00"


async def test_an_empty_batch_or_an_unknown_command_type_is_400(client: Client) -> None:
    empty = await client.post("/batches", json={"commands": []})
    unknown = await client.post("/batches", json={"commands": [{"type": "close_account"}]})

    assert_error(empty, 400, "validation_error")
    assert_error(unknown, 400, "validation_error")


async def test_a_retried_batch_with_its_idempotency_key_is_answered_once(client: Client) -> None:
    key = {"Idempotency-Key": "batch-1"}
    commands = {"commands": [open_("alice"), deposit("alice", "5.00")]}
    first = await client.post("/batches", json=commands, headers=key)
    head = await store_of(client).head_position()

    retry = await client.post("/batches", json=commands, headers=key)

    assert (retry.status_code, retry.json()) == (200, first.json())
    assert await store_of(client).head_position() == head
