"""What the write API says when the event store fails: before anything was sent, "nothing was
recorded" (503 store_unavailable); after the append was sent, "the outcome is unknown, a retry with
the same Idempotency-Key is safe" (503 outcome_unknown), never a claim that nothing happened.

Real PostgreSQL: the store-wide append lock, held by the test, parks an append inside
bank_append_batch(), and pg_terminate_backend loses its connection there.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.integration.write_api_client import assert_error, racing_client, write_api
from tests.support import free_port, wait_until

pytestmark = pytest.mark.postgres

APPEND_LOCK_KEY = 727_001  # the store-wide lock bank_append_batch() takes


def _appends_waiting_for_the_lock(pg_url: str) -> list[int]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%bank_append_batch%'"
        ).fetchall()
    return [int(row[0]) for row in rows]


def _deposits_with_key(pg_url: str, key: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE metadata->>'idempotency_key' = %s", (key,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_connection_lost_after_the_append_was_sent_is_503_outcome_unknown_and_a_retry_is_safe(
    pg_url: str,
) -> None:
    async with write_api(pg_url) as client:
        opened = await client.post("/accounts", json={"owner": "U", "account_id": "u"})
        assert opened.status_code == 201
        key = {"Idempotency-Key": "unknown-1"}
        with psycopg.connect(pg_url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(%s)", (APPEND_LOCK_KEY,))
            async with racing_client(client) as racing:
                answer = asyncio.create_task(
                    racing.post("/accounts/u/deposit", json={"amount": "5.00"}, headers=key)
                )
                await asyncio.to_thread(
                    wait_until,
                    lambda: _appends_waiting_for_the_lock(pg_url),
                    10,
                    "the deposit's append to wait for the lock",
                )
                for pid in _appends_waiting_for_the_lock(pg_url):
                    blocker.execute("SELECT pg_terminate_backend(%s)", (pid,))
                response = await answer

        assert_error(response, 503, "outcome_unknown")
        detail = response.json()["detail"]
        assert "nothing was recorded" not in detail
        assert "may or may not have been recorded" in detail
        assert "same Idempotency-Key is safe" in detail
        assert response.headers["retry-after"] == "1"

        retry = await client.post("/accounts/u/deposit", json={"amount": "5.00"}, headers=key)
        again = await client.post("/accounts/u/deposit", json={"amount": "5.00"}, headers=key)

        assert (retry.status_code, again.status_code) == (200, 200), retry.text
        assert retry.json() == again.json()
        assert retry.json()["balance"] == "5.00"
        assert _deposits_with_key(pg_url, "unknown-1") == 1


async def test_a_store_that_cannot_be_reached_is_503_store_unavailable_nothing_recorded() -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing_listens_here"
    async with write_api(nowhere) as client:
        response = await client.post("/accounts", json={"owner": "N"})

    assert_error(response, 503, "store_unavailable")
    assert "nothing was recorded" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
