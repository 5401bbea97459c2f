"""Redis restarted under load, with the whole stack on a private `redis-server` of the test's own.

Redis holds nothing that cannot be rebuilt: with no persistence, a restart loses the read models,
the checkpoints, the queue and the API-key mirror. Commands must not notice (the write API decides
from the event store only, and the publisher swallows Redis failures); afterwards the worker must
start again from position 0 into an empty generation, converge to a full replay of the store, and
rebuild the key mirror so the query API lets its readers in again.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import httpx
import pytest
import redis

from auth.key_store import create_key
from kernel.read_model_layout import BALANCES, FIRST_GENERATION, ReadModelKeys
from kernel.settings import Settings
from tests.fault.support import (
    DepositLoad,
    PrivateRedis,
    assert_each_acknowledged_command_stored_once,
    assert_projections_equal_a_replay,
    running,
    stored_events,
    wait_for_projections,
)
from tests.support import checkpoints, read_side_settings, replay, wait_until
from write_side.store.database import create_sync_store_engine

pytestmark = pytest.mark.fault

ACCOUNTS = [f"acct-{n}" for n in range(6)]


def _tokens(database_url: str) -> tuple[str, str]:
    engine = create_sync_store_engine(database_url)
    try:
        with engine.begin() as conn:
            return create_key(conn, "writer", ["write"]), create_key(conn, "reader", ["read"])
    finally:
        engine.dispose()


def _balance(query_url: str, token: str, account_id: str, position: int) -> httpx.Response:
    return httpx.get(
        f"{query_url}/accounts/{account_id}/balance",
        params={"min_position": position, "wait_ms": 0},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_a_redis_restart_under_load_fails_no_command_and_the_projections_rebuild_from_zero(
    pg_url: str, redis_prefix: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    settings: Settings = read_side_settings(
        pg_url, private_redis.url, redis_prefix, auth_enabled=True
    )
    write_token, read_token = _tokens(pg_url)
    keys = ReadModelKeys(redis_prefix)
    with (
        closing(redis.Redis.from_url(private_redis.url, decode_responses=True)) as client,
        running(settings, tmp_path, query_api=True, worker=True) as stack,
    ):
        writer = {"Authorization": f"Bearer {write_token}"}
        for account_id in ACCOUNTS:
            response = httpx.post(
                f"{stack.write_url}/accounts",
                json={"owner": "F", "account_id": account_id},
                headers=writer,
            )
            assert response.status_code == 201, response.text
        opened_at = response.json()["position"]
        # Before the fault: the mirror is built and the projections follow the store.
        wait_until(
            lambda: (
                _balance(stack.query_url, read_token, ACCOUNTS[-1], opened_at).status_code == 200
            ),
            timeout=20,
            what="the query API to serve the new accounts",
        )

        with DepositLoad(stack.write_url, ACCOUNTS, headers=writer) as load:
            load.wait_for_more(50, "commands before the restart")
            assert min(checkpoints(client, redis_prefix).values()) > 0
            client.set(f"{redis_prefix}:sentinel", "written before the restart")
            private_redis.stop()
            assert not private_redis.answers()
            load.wait_for_more(50, "commands while Redis is away")
            private_redis.start()
            assert not client.exists(f"{redis_prefix}:sentinel"), "the restart must lose all"
            load.wait_for_more(50, "commands after the restart")

        assert set(load.statuses) == {200}, f"every command must succeed: {load.statuses}"
        assert_each_acknowledged_command_stored_once(pg_url, load.acknowledged)

        head = wait_for_projections(client, settings)
        # Everything was lost, so convergence means a replay from position 0 into a fresh first
        # generation: the generation's own event counter holds every event of the store.
        assert client.get(keys.live(BALANCES)) == str(FIRST_GENERATION)
        summary = client.hgetall(keys.generation(BALANCES, FIRST_GENERATION).summary)
        assert int(summary["events"]) == stored_events(pg_url)
        assert_projections_equal_a_replay(client, settings)

        # The sweep rebuilds the API-key mirror: readers get in again (a 503 until then, or on a
        # pooled connection that died with the old server), and read their own writes.
        wait_until(
            lambda: _balance(stack.query_url, read_token, ACCOUNTS[0], head).status_code == 200,
            timeout=10,
            what="the query API to let a reader in again",
        )
        answer = _balance(stack.query_url, read_token, ACCOUNTS[0], head).json()
        assert answer["balance"] == replay(pg_url).balances[ACCOUNTS[0]]["balance"]
