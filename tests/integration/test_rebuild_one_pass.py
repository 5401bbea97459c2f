"""Rebuilding every projection from one read of the store (projectors/one_pass.py), against real
Redis and PostgreSQL, and the lease that does not spoil its own transactions."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import WatchError

from kernel.events import RecordedEvent
from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.balances import BalancesProjection
from projectors.catch_up import PROJECTIONS, Target, drain, open_context, run_catch_up
from projectors.consistency import compare_generations
from projectors.lease import Lease
from projectors.one_pass import drain_together
from projectors.projection import Projection
from projectors.rebuild import rebuild_projections
from projectors.statements import StatementsProjection
from tests.integration.test_as_of import write_history_over_time
from tests.support import append_transfer, checkpoints, projected, replay, write_traffic
from write_side.store.event_store import EventStore

pytest_plugins = ["tests.fixtures"]  # settings, rdb


class CountingStore(EventStore):
    """The real store, counting the events it hands to projectors."""

    events_read = 0

    async def read_after(self, position: int, limit: int = 1000) -> list[RecordedEvent]:
        events = await super().read_after(position, limit)
        self.events_read += len(events)
        return events


async def _transfers(settings: Settings) -> int:
    async with open_context(settings) as ctx:
        for n in range(5):
            head = await append_transfer(ctx.store, "acct-00001", "acct-00002", "1.00", f"t{n}")
    return head


@pytest.fixture
def filled(settings: Settings) -> int:
    """Interleaved accounts and transfers (two events in one store transaction); the head."""
    write_traffic(settings.store.database_url, accounts=20, events_per_account=30, chunk=3)
    return asyncio.run(_transfers(settings))


def test_rebuilding_every_projection_reads_the_store_no_more_than_rebuilding_one(
    settings: Settings, rdb: redis.Redis, filled: int
) -> None:
    asyncio.run(run_catch_up(settings))

    async def rebuild(projections: list[Projection]) -> tuple[int, list[int]]:
        async with open_context(settings) as opened:
            store = CountingStore(opened.store.engine)
            ctx = dataclasses.replace(opened, store=store)
            results = await rebuild_projections(ctx, projections, batch_size=7)
            return store.events_read, [r.events for r in results]

    together, passed = asyncio.run(rebuild(list(PROJECTIONS)))
    alone, _ = asyncio.run(rebuild([PROJECTIONS[0]]))

    assert together == alone, "one read of the store for both projections, not one each"
    assert passed == [filled, filled]
    keys = ReadModelKeys(settings.redis.prefix)
    assert [rdb.get(keys.live(name)) for name in (BALANCES, STATEMENTS)] == ["3", "2"]
    assert checkpoints(rdb, settings.redis.prefix) == {BALANCES: filled, STATEMENTS: filled}
    assert projected(rdb, settings.redis.prefix) == replay(settings.store.database_url)


def test_one_pass_catches_up_targets_that_stand_at_different_checkpoints(
    settings: Settings, rdb: redis.Redis, filled: int
) -> None:
    balances, statements = PROJECTIONS
    live = Target(generation=1, live=1)

    async def scenario() -> list[int]:
        async with open_context(settings) as ctx:
            # Balances alone up to a transaction's end (a chunk of three events), then both.
            ahead = await drain(ctx, balances, target=live, batch_size=3, until=300)
            assert ahead == 300
            return await drain_together(ctx, [(balances, live), (statements, live)], batch_size=11)

    assert asyncio.run(scenario()) == [filled - 300, filled]
    assert checkpoints(rdb, settings.redis.prefix) == {BALANCES: filled, STATEMENTS: filled}
    assert projected(rdb, settings.redis.prefix) == replay(settings.store.database_url)


async def _transfers_and_a_reversal(settings: Settings) -> None:
    async with open_context(settings) as ctx:
        for n in range(6):
            await append_transfer(ctx.store, f"acct-0000{n}", f"acct-0001{n}", f"{n}.25", f"x{n}")
        await append_transfer(ctx.store, "acct-00013", "acct-00003", "3.25", "x-back", None, "x3")


def test_a_scratch_generation_filled_from_memory_holds_exactly_what_the_live_catch_up_wrote(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key of both projections (accounts, both indexes, summary, transfers, a reversal,
    holds captured, voided, expired and pending, histories, statements, time indexes), written
    by a one-pass fill that keeps its accounts' state in memory, equals what the live catch-up
    wrote reading the state from Redis before every batch. Both go in small batches, so state
    carries over many batches."""
    database_url = settings.store.database_url
    write_traffic(database_url, accounts=25, events_per_account=24, chunk=3)
    asyncio.run(write_history_over_time(database_url, steps=30))
    asyncio.run(_transfers_and_a_reversal(settings))

    async def scenario() -> list[list[str]]:
        async with open_context(settings) as ctx:
            for projection in PROJECTIONS:  # the live path, generation 1
                await drain(ctx, projection, batch_size=5)
            head = await ctx.store.head_position()
            leases = [Lease(ctx.redis, ctx.keys.rebuild_lock(p.name), 10) for p in PROJECTIONS]
            try:
                for lease in leases:
                    assert await lease.acquire()
                targets = [Target(2, 1, lease.guard) for lease in leases]
                with monkeypatch.context() as patched:  # the state must come from memory
                    for cls in (BalancesProjection, StatementsProjection):
                        patched.setattr(cls, "stage", _reads_state)
                    passed = await drain_together(
                        ctx, list(zip(PROJECTIONS, targets, strict=True)), batch_size=7
                    )
                assert passed == [head, head]
                compared = [await compare_generations(ctx, p.name, 1, 2, head) for p in PROJECTIONS]
            finally:
                for lease in leases:
                    await lease.release()
        assert all(c.keys_compared > 3 * 29 for c in compared)  # 29 accounts, 3 keys or more each
        return [c.differences for c in compared]

    assert asyncio.run(scenario()) == [[], []]


async def _reads_state(*_: object, **__: object) -> int:
    raise AssertionError("a scratch generation filled from empty read its state back from Redis")


def test_the_lease_does_not_renew_while_a_transaction_watches_its_lock(
    settings: Settings, redis_url: str
) -> None:
    """A renewal touches the lock key; inside a transaction that WATCHes it, that would make the
    EXEC fail for nothing, so the lease waits for the transaction (renewing every 0.2 s here)."""

    async def scenario() -> None:
        client = Redis.from_url(redis_url, decode_responses=True)
        keys = ReadModelKeys(settings.redis.prefix)
        lease = Lease(client, keys.rebuild_lock("test"), ttl_s=0.6)
        try:
            assert await lease.acquire()
            async with lease.guard.watching, client.pipeline(transaction=True) as tx:
                await tx.watch(lease.key)
                await asyncio.sleep(0.3)  # longer than a renewal period, shorter than the TTL
                tx.multi()  # type: ignore[no-untyped-call]
                tx.set(keys.head, 1)
                try:
                    await tx.execute()
                except WatchError:
                    pytest.fail("a renewal touched the lock inside the transaction")
            await asyncio.sleep(0.9)  # renewals go on once it is done: the lease outlives its TTL
            await lease.ensure_held()
        finally:
            await lease.release()
            await client.aclose()

    asyncio.run(scenario())
