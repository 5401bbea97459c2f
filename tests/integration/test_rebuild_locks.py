"""A rebuild or dry run and its locks, against real Redis and PostgreSQL: the lock is held for the
whole run, a run that loses it stops before writing or deleting anything more, and a dry run
under live traffic compares at one consistent cut."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import redis

from kernel.events import MoneyDeposited, NewEvent
from kernel.read_model_layout import BALANCES, ReadModelKeys
from kernel.settings import Settings
from projectors.balances import BalancesProjection
from projectors.catch_up import ProjectionContext, open_context, run_catch_up
from projectors.consistency import check_projection
from projectors.errors import RunLostItsLock
from projectors.lease import Lease
from projectors.rebuild import rebuild_projection
from tests.support import eventually, projected, replay, write_traffic

pytest_plugins = ["tests.fixtures"]  # settings, rdb


def _live_dump(client: redis.Redis, prefix: str) -> dict[str, bytes | None]:
    keys = ReadModelKeys(prefix)
    live = int(client.get(keys.live(BALANCES)) or 1)
    pattern = keys.generation(BALANCES, live).base + ":*"
    return {key: client.dump(key) for key in client.scan_iter(match=pattern, count=1000)}  # type: ignore[misc]


@pytest.fixture
def caught_up(settings: Settings, rdb: redis.Redis) -> Settings:
    write_traffic(settings.store.database_url, accounts=30, events_per_account=40)
    asyncio.run(run_catch_up(settings))
    return settings


async def test_a_lease_is_still_held_long_after_its_ttl_while_its_run_goes_on(
    settings: Settings,
) -> None:
    async with open_context(settings) as ctx:
        lease = Lease(ctx.redis, f"{settings.redis.prefix}:lease-test", ttl_s=0.3)
        assert await lease.acquire()
        try:
            await asyncio.sleep(1.2)  # the subject: four TTLs without any batch to renew it
            await lease.ensure_held()
            assert await ctx.redis.get(lease.key) == lease.guard.token
        finally:
            await lease.release()
        assert not await ctx.redis.exists(lease.key)


def test_a_rebuild_that_loses_its_lock_mid_replay_writes_and_deletes_nothing_more(
    caught_up: Settings, rdb: redis.Redis
) -> None:
    prefix = caught_up.redis.prefix
    keys = ReadModelKeys(prefix)
    before = _live_dump(rdb, prefix)
    scratch_meta = keys.generation(BALANCES, 2).meta

    async def scenario() -> int:
        async with open_context(caught_up) as ctx:
            rebuild = asyncio.create_task(
                rebuild_projection(ctx, BalancesProjection(), batch_size=5)
            )

            async def replaying() -> bool:
                return int(await ctx.redis.hget(scratch_meta, "position") or 0) > 0

            await eventually(replaying, 30, "the rebuild's first batch")
            # Another run takes the lock (as after an expiry); read the scratch checkpoint at the
            # same instant.
            async with ctx.redis.pipeline(transaction=True) as tx:
                tx.set(keys.rebuild_lock(BALANCES), "another-run")
                tx.hget(scratch_meta, "position")
                _, position = await tx.execute()
            with pytest.raises(RunLostItsLock, match="stopped before writing or deleting"):
                await rebuild
            return int(position)

    stolen_at = asyncio.run(scenario())

    assert int(rdb.hget(scratch_meta, "position") or 0) == stolen_at, "no batch after the loss"
    assert rdb.get(keys.live(BALANCES)) == "1"
    assert _live_dump(rdb, prefix) == before
    assert rdb.exists(scratch_meta), "a run without its lock deletes nothing, not even its scratch"
    assert rdb.get(keys.rebuild_lock(BALANCES)) == "another-run"


def test_a_dry_run_that_lost_its_lock_while_waiting_for_the_runner_deletes_nothing(
    caught_up: Settings, rdb: redis.Redis
) -> None:
    """The dry run used to clean up with "delete every generation but the live one I saw", so
    with its lock gone it deleted the generation of whichever run held the lock now."""
    prefix = caught_up.redis.prefix
    keys = ReadModelKeys(prefix)
    head = int(rdb.hget(keys.generation(BALANCES, 1).meta, "position") or 0)
    others = keys.generation(BALANCES, 7)  # the generation another run is filling
    rdb.hset(others.meta, "position", 5)
    rdb.hset(others.account("acct-00001"), "balance", 1)
    before = _live_dump(rdb, prefix)
    rdb.set(keys.lock(BALANCES), "a-slow-live-runner", px=60_000)

    async def scenario() -> None:
        async with open_context(caught_up) as ctx:
            dry_run = asyncio.create_task(check_projection(ctx, BalancesProjection()))

            async def replayed(ctx: ProjectionContext = ctx) -> bool:
                scratch = ctx.keys.generation(BALANCES, 2).meta
                return int(await ctx.redis.hget(scratch, "position") or 0) == head

            await eventually(replayed, 30, "the dry run's replay to reach the head")
            await ctx.redis.set(ctx.keys.rebuild_lock(BALANCES), "another-run")
            await ctx.redis.delete(ctx.keys.lock(BALANCES))  # the live runner hands over
            with pytest.raises(RunLostItsLock):
                await dry_run

    asyncio.run(scenario())

    assert rdb.hget(others.meta, "position") == "5", "another run's generation must survive"
    assert rdb.hget(others.account("acct-00001"), "balance") == "1"
    assert rdb.get(keys.live(BALANCES)) == "1"
    assert _live_dump(rdb, prefix) == before


def test_a_dry_run_under_concurrent_deposits_reports_consistent(
    caught_up: Settings, rdb: redis.Redis
) -> None:
    """Deposits keep arriving and the live runner keeps projecting them while dry runs compare."""

    async def scenario() -> list[bool]:
        async with open_context(caught_up) as ctx:
            stop = asyncio.Event()

            async def deposits() -> None:
                version = await ctx.store.stream_version("acct-00002")
                while not stop.is_set():
                    event = NewEvent.from_domain(MoneyDeposited(Decimal("1.00")))
                    version = (await ctx.store.append("acct-00002", [event], version)).last_version
                    await asyncio.sleep(0.005)  # about 100-200 commands/s, not a synchronisation

            async def live_runner() -> None:
                while not stop.is_set():
                    await run_catch_up(caught_up, budget_s=0.5)

            traffic = [asyncio.create_task(deposits()), asyncio.create_task(live_runner())]
            try:
                results = []
                for _ in range(5):
                    comparison = await check_projection(ctx, BalancesProjection())
                    results.append(comparison.consistent)
                    assert comparison.differences == []
                return results
            finally:
                stop.set()
                await asyncio.gather(*traffic)

    assert asyncio.run(scenario()) == [True] * 5
    asyncio.run(run_catch_up(caught_up, wait_for_locks=True))
    assert projected(rdb, caught_up.redis.prefix) == replay(caught_up.store.database_url)
