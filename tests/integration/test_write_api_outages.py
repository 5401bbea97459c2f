"""When PostgreSQL is unreachable the write API says so with a 503, never a 500 or a traceback."""

from __future__ import annotations

import pytest

from tests.integration.write_api_client import assert_error, write_api

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/bank"  # nothing listens on port 1


async def test_health_is_503_when_the_database_is_unreachable() -> None:
    async with write_api(UNREACHABLE) as client:
        response = await client.get("/health")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/accounts", {"owner": "Ada"}),
        ("POST", "/accounts", {"owner": "Ada", "account_id": "acc-1"}),
        ("POST", "/accounts/acc-1/deposit", {"amount": "1.00"}),
        ("POST", "/accounts/acc-1/withdraw", {"amount": "1.00", "expected_version": 3}),
        ("POST", "/accounts/acc-1/close", None),
        ("GET", "/accounts/acc-1/events", None),
    ],
)
async def test_a_request_while_postgresql_is_unreachable_is_503_store_unavailable(
    method: str, path: str, body: dict[str, object] | None
) -> None:
    async with write_api(UNREACHABLE) as client:
        response = await client.request(method, path, json=body)

    assert_error(response, 503, "store_unavailable")
    assert response.headers["retry-after"] == "1"


async def test_an_idempotent_command_while_postgresql_is_unreachable_is_503() -> None:
    async with write_api(UNREACHABLE) as client:
        response = await client.post(
            "/accounts/acc-1/deposit", json={"amount": "1"}, headers={"Idempotency-Key": "k-1"}
        )

    assert_error(response, 503, "store_unavailable")


async def test_bad_input_is_still_refused_as_bad_input_while_the_database_is_down() -> None:
    async with write_api(UNREACHABLE) as client:
        response = await client.post("/accounts/acc-1/deposit", json={"amount": "NaN"})

    assert_error(response, 422, "validation_error")
