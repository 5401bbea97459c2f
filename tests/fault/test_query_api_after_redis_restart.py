"""The query API after its Redis restarts: pooled connections died with the old server, yet the
first requests afterwards are answered, not turned into 503s."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from auth.key_store import create_key
from read_side.api.app import create_query_app
from tests.fault.support import PrivateRedis
from tests.support import mirror_keys, read_side_settings
from write_side.store.database import create_sync_store_engine

pytestmark = pytest.mark.fault


async def test_requests_after_a_redis_restart_reconnect_instead_of_failing(
    sqlite_url: str, private_redis: PrivateRedis, redis_prefix: str
) -> None:
    settings = read_side_settings(sqlite_url, private_redis.url, redis_prefix, auth_enabled=True)
    engine = create_sync_store_engine(sqlite_url)
    with engine.begin() as conn:
        token = create_key(conn, "reader", ["read"])
    engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    mirror_keys(settings)
    async with AsyncTestClient(app=create_query_app(settings)) as client:
        for _ in range(3):  # fill both pools (key check, read models) with live connections
            assert (await client.get("/summary", headers=headers)).status_code == 200
        private_redis.stop()
        private_redis.start()  # empty: no persistence
        mirror_keys(settings)  # what the worker's next sweep does
        for _ in range(3):
            response = await client.get("/summary", headers=headers)
            assert response.status_code == 200, response.text
