"""Authentication as wired into the real write and query APIs: bearer tokens with scopes, checked
against SQL on the write side and against the Redis mirror on the query side."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from auth.key_store import create_key
from kernel.settings import Settings
from read_side.api.app import create_query_app
from tests.integration.write_api_client import write_api
from tests.support import mirror_keys, read_side_settings
from write_side.store.database import create_sync_store_engine


def _keys(database_url: str) -> dict[str, str]:
    engine = create_sync_store_engine(database_url)
    try:
        with engine.begin() as conn:
            return {
                "write": create_key(conn, "writer", ["write"]),
                "read": create_key(conn, "reader", ["read"]),
                "admin": create_key(conn, "admin", ["admin"]),
            }
    finally:
        engine.dispose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_write_api_commands_need_a_token_with_the_write_scope(sqlite_url: str) -> None:
    keys = _keys(sqlite_url)
    async with write_api(sqlite_url, auth_enabled=True) as client:
        body = {"owner": "A", "account_id": "a1"}
        missing = await client.post("/accounts", json=body)
        assert missing.status_code == 401
        assert missing.json()["error"] == "unauthorized"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        unknown = await client.post("/accounts", json=body, headers=_bearer("bank_" + "x" * 43))
        assert unknown.status_code == 401
        read_only = await client.post("/accounts", json=body, headers=_bearer(keys["read"]))
        assert read_only.status_code == 403
        assert read_only.json()["error"] == "forbidden"
        assert await client.app.state.store.head_position() == 0, "refused commands append nothing"
        written = await client.post("/accounts", json=body, headers=_bearer(keys["write"]))
        assert written.status_code == 201
        admin = await client.post(
            "/accounts/a1/deposit", json={"amount": "1.00"}, headers=_bearer(keys["admin"])
        )
        assert admin.status_code == 200, "admin implies every scope"


async def test_write_api_audit_trail_needs_read_and_health_and_docs_stay_open(
    sqlite_url: str,
) -> None:
    keys = _keys(sqlite_url)
    async with write_api(sqlite_url, auth_enabled=True) as client:
        await client.post(
            "/accounts", json={"owner": "A", "account_id": "a1"}, headers=_bearer(keys["write"])
        )
        assert (await client.get("/accounts/a1/events")).status_code == 401
        writer = await client.get("/accounts/a1/events", headers=_bearer(keys["write"]))
        assert writer.status_code == 403
        reader = await client.get("/accounts/a1/events", headers=_bearer(keys["read"]))
        assert reader.status_code == 200
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/schema/openapi.json")).status_code == 200


@pytest.fixture
async def query_client(
    sqlite_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], dict[str, str]]]:
    keys = _keys(sqlite_url)
    settings: Settings = read_side_settings(sqlite_url, redis_url, redis_prefix, auth_enabled=True)
    mirror_keys(settings)  # what the worker's sweep does
    async with AsyncTestClient(app=create_query_app(settings)) as client:
        yield client, keys


async def test_query_api_reads_need_the_read_scope_checked_without_sql(
    query_client: tuple[AsyncTestClient[Litestar], dict[str, str]],
) -> None:
    client, keys = query_client
    assert (await client.get("/summary")).status_code == 401
    assert (await client.get("/summary", headers=_bearer(keys["write"]))).status_code == 403
    assert (await client.get("/summary", headers=_bearer(keys["read"]))).status_code == 200
    unknown = await client.get("/accounts/nobody/balance", headers=_bearer(keys["read"]))
    assert unknown.status_code == 404
    assert (await client.get("/health")).status_code == 200


async def test_query_api_projection_status_needs_admin(
    query_client: tuple[AsyncTestClient[Litestar], dict[str, str]],
) -> None:
    client, keys = query_client
    assert (await client.get("/projections", headers=_bearer(keys["read"]))).status_code == 403
    assert (await client.get("/projections", headers=_bearer(keys["admin"]))).status_code == 200
