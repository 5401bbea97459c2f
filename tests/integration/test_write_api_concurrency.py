"""Racing HTTP requests on PostgreSQL: the answers a client sees when others write at the same time."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.integration.write_api_client import assert_error, racing_client, store_of, write_api

pytestmark = pytest.mark.postgres


async def test_fifty_parallel_withdrawals_over_http_give_twenty_200s_and_thirty_409s(
    pg_url: str,
) -> None:
    async with write_api(pg_url, command_deadline_ms=30_000) as client:
        await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"})
        await client.post("/accounts/acc-1/deposit", json={"amount": "200.00"})

        async with racing_client(client) as racing:
            responses = await asyncio.gather(
                *(
                    racing.post("/accounts/acc-1/withdraw", json={"amount": "10.00"})
                    for _ in range(50)
                )
            )

        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 20, 409: 30}, [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 409):
            assert_error(refused, 409, "insufficient_funds")
        balances = sorted(r.json()["balance"] for r in responses if r.status_code == 200)
        assert balances == sorted(f"{10 * n}.00" for n in range(20))
        stream = await store_of(client).read_stream("acc-1")
        assert [e.version for e in stream] == list(range(1, 23))
        assert sorted(r.json()["version"] for r in responses if r.status_code == 200) == list(
            range(3, 23)
        )


async def test_racing_requests_with_the_same_expected_version_give_one_200_and_409s(
    pg_url: str,
) -> None:
    async with write_api(pg_url) as client:
        await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"})
        await client.post("/accounts/acc-1/deposit", json={"amount": "100.00"})

        async with racing_client(client) as racing:
            responses = await asyncio.gather(
                *(
                    racing.post(
                        "/accounts/acc-1/withdraw", json={"amount": "1.00", "expected_version": 2}
                    )
                    for _ in range(10)
                )
            )

        assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
        for conflict in (r for r in responses if r.status_code == 409):
            assert_error(conflict, 409, "version_conflict")
            assert conflict.json()["current_version"] == 3
        assert await store_of(client).stream_version("acc-1") == 3


async def test_racing_requests_with_one_idempotency_key_append_once(pg_url: str) -> None:
    async with write_api(pg_url) as client:
        await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"})
        key = {"Idempotency-Key": "order-1"}

        async with racing_client(client) as racing:
            responses = await asyncio.gather(
                *(
                    racing.post("/accounts/acc-1/deposit", json={"amount": "5.00"}, headers=key)
                    for _ in range(10)
                )
            )

        answered = [r for r in responses if r.status_code == 200]
        for in_flight in (r for r in responses if r.status_code != 200):
            assert_error(in_flight, 409, "idempotency_key_in_flight")
        assert answered, [r.text for r in responses]
        assert {(r.json()["version"], r.json()["balance"]) for r in answered} == {(2, "5.00")}
        assert await store_of(client).stream_version("acc-1") == 2
