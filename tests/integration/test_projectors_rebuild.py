"""Rebuilding a projection into a new generation beside the live one, against real Redis/PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from kernel.events import MoneyDeposited, NewEvent
from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.balances import BalancesProjection
from projectors.catch_up import ProjectionContext, open_context, run_catch_up
from projectors.rebuild import (
    RebuildInProgress,
    RebuildResult,
    projection_named,
    rebuild_projection,
)
from tests.support import (
    BANK,
    env_for,
    eventually,
    projected,
    replay,
    stop,
    wait_until,
    write_traffic,
)

pytest_plugins = ["tests.fixtures"]  # settings, worker_env, rdb


def generations_present(client: redis.Redis, prefix: str, projection: str) -> set[int]:
    keys = ReadModelKeys(prefix)
    found = {
        keys.generation_of_key(k) for k in client.scan_iter(keys.generations_pattern(projection))
    }
    return {g for g in found if g is not None}


async def rebuild_started(ctx: ProjectionContext, projection: str) -> bool:
    meta = ctx.keys.generation(projection, 2).meta
    return int(await ctx.redis.hget(meta, "position") or 0) > 0


@pytest.fixture
def caught_up(settings: Settings, rdb: redis.Redis) -> Settings:
    write_traffic(settings.store.database_url, accounts=30, events_per_account=40)
    asyncio.run(run_catch_up(settings))
    return settings


def test_a_rebuild_fills_a_new_generation_while_the_old_one_serves_then_switches_and_deletes_it(
    caught_up: Settings, rdb: redis.Redis
) -> None:
    prefix = caught_up.redis.prefix
    before = projected(rdb, prefix)

    async def scenario() -> None:
        async with open_context(caught_up) as ctx:
            rebuild = asyncio.create_task(
                rebuild_projection(ctx, BalancesProjection(), batch_size=40)
            )
            await eventually(
                lambda: rebuild_started(ctx, BALANCES), 30, "the rebuild's first batch"
            )
            assert rdb.get(ctx.keys.live(BALANCES)) == "1"
            assert projected(rdb, prefix).balances == before.balances  # the old one still serves
            # Traffic keeps arriving and the live projection keeps following it meanwhile.
            await ctx.store.append(
                "acct-00001", [NewEvent.from_domain(MoneyDeposited(Decimal("9.99")))], 40
            )
            await run_catch_up(caught_up)
            result = await rebuild

        assert (result.old_generation, result.new_generation) == (1, 2)
        assert result.deleted_keys > 0

    asyncio.run(scenario())

    keys = ReadModelKeys(prefix)
    assert rdb.get(keys.live(BALANCES)) == "2"
    assert generations_present(rdb, prefix, BALANCES) == {2}
    assert generations_present(rdb, prefix, STATEMENTS) == {1}
    assert projected(rdb, prefix) == replay(caught_up.store.database_url)


def test_a_rebuild_killed_midway_leaves_the_live_generation_untouched_and_the_next_run_cleans_up(
    caught_up: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    prefix = caught_up.redis.prefix
    keys = ReadModelKeys(prefix)
    before = projected(rdb, prefix)
    with (tmp_path / "rebuild.log").open("wb") as log:
        rebuild = subprocess.Popen(
            [*BANK, "projections", "rebuild", STATEMENTS, "--batch-size", "10"],
            env=env_for(caught_up),
            stdout=log,
            stderr=log,
        )
    try:
        new_meta = keys.generation(STATEMENTS, 2).meta
        wait_until(lambda: int(rdb.hget(new_meta, "position") or 0) > 0, 30, "the rebuild to start")
        rebuild.send_signal(signal.SIGKILL)
        rebuild.wait()
    finally:
        stop(rebuild)

    assert rdb.get(keys.live(STATEMENTS)) == "1"
    assert generations_present(rdb, prefix, STATEMENTS) == {1, 2}  # a half-built leftover
    assert projected(rdb, prefix) == before
    with pytest.raises(RebuildInProgress):  # the dead run's lock holds until it expires
        rebuild_now(caught_up, STATEMENTS)
    wait_until(lambda: not rdb.exists(keys.rebuild_lock(STATEMENTS)), 30, "the dead run's lock")

    result = rebuild_now(caught_up, STATEMENTS)

    # Generation numbers are never reused: the leftover 2 is deleted, the new one is 3.
    assert (result.old_generation, result.new_generation) == (1, 3)
    assert generations_present(rdb, prefix, STATEMENTS) == {3}
    assert projected(rdb, prefix) == replay(caught_up.store.database_url)


def test_a_second_rebuild_of_the_same_projection_is_refused_while_one_runs(
    caught_up: Settings, rdb: redis.Redis
) -> None:
    async def scenario() -> None:
        async with open_context(caught_up) as ctx:
            first = asyncio.create_task(
                rebuild_projection(ctx, BalancesProjection(), batch_size=40)
            )
            await eventually(lambda: rebuild_started(ctx, BALANCES), 30, "the first rebuild to run")

            with pytest.raises(RebuildInProgress, match="already running"):
                await rebuild_projection(ctx, BalancesProjection())

            assert (await first).new_generation == 2

    asyncio.run(scenario())
    assert projected(rdb, caught_up.redis.prefix) == replay(caught_up.store.database_url)


def rebuild_now(settings: Settings, name: str) -> RebuildResult:
    async def run() -> RebuildResult:
        async with open_context(settings) as ctx:
            return await rebuild_projection(ctx, projection_named(name))

    return asyncio.run(run())


def test_a_rebuild_writes_no_change_feed_and_the_new_generation_feeds_from_its_switch(
    caught_up: Settings, rdb: redis.Redis
) -> None:
    keys = ReadModelKeys(caught_up.redis.prefix)
    assert rdb.xlen(keys.generation(BALANCES, 1).changes) > 0  # the live one published its batches

    result = rebuild_now(caught_up, BALANCES)

    new = keys.generation(BALANCES, result.new_generation)
    switched_at = int(rdb.hget(new.meta, "position") or 0)
    assert switched_at > 0
    assert rdb.xlen(new.changes) == 0, "the scratch generation published nothing"
    assert int(rdb.hget(new.meta, "feed_from") or -1) == switched_at

    async def deposit_and_catch_up() -> None:
        async with open_context(caught_up) as ctx:
            version = await ctx.store.stream_version("acct-00002")
            await ctx.store.append(
                "acct-00002", [NewEvent.from_domain(MoneyDeposited(Decimal("1.25")))], version
            )
        await run_catch_up(caught_up)

    asyncio.run(deposit_and_catch_up())
    kinds = [fields["kind"] for _, fields in rdb.xrange(new.changes)]
    assert kinds == ["balance", "projection"], "live batches after the switch publish as before"
    assert int(rdb.hget(new.meta, "feed_from") or -1) == switched_at
