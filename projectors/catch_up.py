"""Catching projections up with the event store, batch by batch, each batch exactly once.

A batch and its checkpoint are written in one MULTI/EXEC that WATCHes the checkpoint and the live
generation pointer: if anyone else moved either after we read them, EXEC fails and we re-read, so a
batch is never applied twice or half. A Redis lock keeps one runner per projection (it saves work;
the WATCH, not the lock, is what keeps the model correct if a lock expires under a slow runner).
A rebuild's batches also WATCH its lock (`Target.guard`), so a rebuild that lost it writes nothing.
Live runners yield the runner lock between batches to a rebuild that asked for it (handover.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, WatchError

from kernel.change_feed import FEED_PROJECTION, META_FEED_TIP, ChangeId
from kernel.events import RecordedEvent
from kernel.master_key import MasterKey, master_key_of
from kernel.read_model_layout import (
    FIRST_GENERATION,
    META_ADVANCED_AT,
    META_EVENTS,
    META_POSITION,
    ReadModelKeys,
    checkpoint_message,
)
from kernel.settings import Settings
from projectors import metrics
from projectors.balances import BalancesProjection
from projectors.batches import read_batch
from projectors.change_feed import stage_progress
from projectors.head import RAISE_HEAD
from projectors.lease import Guard, LeaseLost
from projectors.projection import Projection
from projectors.statements import StatementsProjection
from write_side.personal_data import PersonalData
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
LOCK_TTL_S = 10.0
"""A killed runner's lock frees itself this soon."""
LOCK_RENEW_S = LOCK_TTL_S / 3
"""A runner renews its lock after the first batch that ends this long after the last renewal."""
LINGER_S = 0.25
"""How long a job that caught up waits for the next announcement before it ends."""
RUNNING_TTL_S = 15
"""The running marker outlives a killed job by at most this; the sweep covers the gap."""
JOB_BUDGET_S = 120.0
"""A catch-up job hands over to the next queued job after this long (RQ's job timeout is longer)."""

PROJECTIONS: tuple[Projection, ...] = (BalancesProjection(), StatementsProjection())


@dataclass(frozen=True, slots=True)
class ProjectionContext:
    redis: Redis
    store: EventStore
    keys: ReadModelKeys
    master_key: MasterKey | None = None
    """Opens the accounts' keys, so the folds see owners in clear (or `[erased]`)."""
    personal_data: PersonalData = field(init=False)
    """Built once per context, not per batch."""
    reading: dict[tuple[int, int], asyncio.Task[list[RecordedEvent]]] = field(
        init=False, default_factory=dict
    )
    """The batch reads in flight, by (after, size): see `batch_after`."""

    def __post_init__(self) -> None:
        keys = PersonalKeys(self.store.engine, self.master_key)
        object.__setattr__(self, "personal_data", PersonalData(keys))

    async def revealed(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        return await self.personal_data.reveal(events)

    async def batch_after(self, after: int, size: int) -> list[RecordedEvent]:
        """The batch after `after` (`read_batch`), revealed. The projections catch up side by side
        from the same checkpoint, so a read asked for while the same read is in flight shares it:
        one query for both. Only reads in flight are shared; a finished one is never reused, so
        nobody gets an older view of the store than a read of its own would give."""
        key = (after, size)
        shared = self.reading.get(key)
        if shared is None or shared.done():
            shared = asyncio.ensure_future(self._read(after, size))
            self.reading[key] = shared
        try:
            return await asyncio.shield(shared)
        finally:
            if shared.done() and self.reading.get(key) is shared:
                del self.reading[key]

    async def _read(self, after: int, size: int) -> list[RecordedEvent]:
        return await self.revealed(await read_batch(self.store, after, size))


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[ProjectionContext]:
    """Engine and client for one job, on the job's own event loop; closed when it ends."""
    engine = create_async_store_engine(settings.store.database_url, pool_size=2)
    redis = Redis.from_url(
        settings.redis.url, decode_responses=True, socket_connect_timeout=2, socket_timeout=10
    )
    try:
        yield ProjectionContext(
            redis,
            EventStore(engine),
            ReadModelKeys(settings.redis.prefix),
            master_key_of(settings),
        )
    finally:
        await redis.aclose()
        await engine.dispose()


class GenerationMoved(Exception):
    """The live pointer no longer names the generation a runner expected."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a runner writes: `generation`, valid only while the pointer still names `live` (and,
    with a `guard`, only while the run still holds that lock)."""

    generation: int
    live: int
    guard: Guard | None = None


_LIVE_POSITION = """
local generation = redis.call('GET', KEYS[2])
if not generation then
  redis.call('SET', KEYS[2], ARGV[1], 'NX')
  generation = redis.call('GET', KEYS[2])
end
local checkpoint = redis.call('HGET', ARGV[2] .. generation .. ARGV[3], ARGV[4]) or '0'
return {redis.call('EXISTS', KEYS[1]), tonumber(generation), tonumber(checkpoint)}
"""
"""KEYS: handover marker, live pointer. ARGV: first generation, the generation meta key around
its number, the checkpoint field. Returns [handover asked (0/1), live generation, its checkpoint]:
what a live runner looks at before each batch, in one round trip instead of three."""


@dataclass(frozen=True, slots=True)
class LivePosition:
    handover_requested: bool
    generation: int
    checkpoint: int


async def live_position(ctx: ProjectionContext, projection: str) -> LivePosition:
    """The live generation of `projection` (created if there is none) and its checkpoint."""
    before, after = ctx.keys.around_generation(projection, lambda keys: keys.meta)
    keys = [ctx.keys.handover(projection), ctx.keys.live(projection)]
    args: list[str | int] = [FIRST_GENERATION, before, after, META_POSITION]
    handover, generation, checkpoint = await ctx.redis.eval(_LIVE_POSITION, len(keys), *keys, *args)
    return LivePosition(bool(handover), int(generation), int(checkpoint))


async def live_generation(ctx: ProjectionContext, projection: str) -> int:
    key = ctx.keys.live(projection)
    raw = await ctx.redis.get(key)
    if raw is None:
        await ctx.redis.set(key, FIRST_GENERATION, nx=True)
        raw = await ctx.redis.get(key)
    return int(raw or FIRST_GENERATION)


async def checkpoint_of(ctx: ProjectionContext, projection: str, generation: int) -> int:
    raw = await ctx.redis.hget(ctx.keys.generation(projection, generation).meta, META_POSITION)
    return int(raw or 0)


async def apply_batch(
    ctx: ProjectionContext,
    projection: Projection,
    target: Target,
    checkpoint: int,
    events: Sequence[RecordedEvent],
    *,
    started: float | None = None,
) -> bool:
    """Apply `events` (read after `checkpoint`) and the new checkpoint in one transaction, with the
    change feed's entries (the feed's projection, live generation only), the new checkpoint's
    announcement (live generation only) and the worker's counts (`started` is when the batch
    began, by `time.monotonic()`).

    False when the checkpoint moved since it was read (the caller re-reads and retries); raises
    GenerationMoved when the live pointer changed, LeaseLost when the target's guard lock did.
    """
    gkeys = ctx.keys.generation(projection.name, target.generation)
    live_key = ctx.keys.live(projection.name)
    guard = target.guard
    async with (
        guard.watching if guard else nullcontext(),
        ctx.redis.pipeline(transaction=True) as tx,
    ):
        try:
            await tx.watch(live_key, gkeys.meta, *([guard.key] if guard else []))
            # Two reads under the WATCH, not one per value: each is a round trip.
            live, head, token = await tx.mget(
                live_key, ctx.keys.head, guard.key if guard else live_key
            )
            position, raw_tip = await tx.hmget(gkeys.meta, [META_POSITION, META_FEED_TIP])
            if guard is not None and token != guard.token:
                raise LeaseLost(f"{guard.key}: lost before a batch into g{target.generation}")
            if int(live or FIRST_GENERATION) != target.live:
                raise GenerationMoved(projection.name)
            if int(position or 0) != checkpoint:
                return False
            feed = projection.name == FEED_PROJECTION and target.generation == target.live
            tip = ChangeId.parse(str(raw_tip)) if feed and raw_tip is not None else None
            tx.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
            applied = await projection.stage(ctx.redis, tx, gkeys, events, feed=feed)
            now = datetime.now(UTC).isoformat()
            last = events[-1].position
            tx.hset(gkeys.meta, mapping={META_POSITION: last, META_ADVANCED_AT: now})
            tx.hincrby(gkeys.meta, META_EVENTS, applied)
            if feed:
                stage_progress(tx, gkeys, projection.name, (checkpoint, last), int(head or 0), tip)
            tx.eval(RAISE_HEAD, 1, ctx.keys.head, last)  # events the publishers did not announce
            if target.generation == target.live:  # wakes the reads waiting for this position
                tx.publish(ctx.keys.checkpoints, checkpoint_message(projection.name, last))
            seconds = time.monotonic() - (started if started is not None else time.monotonic())
            metrics.stage_batch(tx, ctx.keys.worker_metrics, projection.name, applied, seconds)
            await tx.execute()
        except WatchError:
            return False
    return True


async def drain(
    ctx: ProjectionContext,
    projection: Projection,
    *,
    target: Target | None = None,
    lock: Lock | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
    yield_to_handover: bool = False,
    until: int | None = None,
    stop_when_short: bool = False,
) -> int:
    """Apply batches until the store has nothing more; return how many events were passed.
    A batch holds `batch_size` events, or a few more so as not to split a store transaction.
    `on_batch(events_in_batch, position)` is told after every applied batch (progress bars).

    Without `target` it follows the live generation (and a switch made by a rebuild); with one it
    fills that generation and raises GenerationMoved if the live pointer changes. Renews `lock`
    after a batch once `LOCK_RENEW_S` have passed; raises LockError if the lock was lost. With
    `yield_to_handover` it stops early, between batches, when a rebuild asks for the runner lock;
    with `until` it stops at that position (an event's position) instead of at the end of the
    store. With `stop_when_short` it returns after applying a batch shorter than `batch_size` (it
    read to the end of the store) instead of reading once more: for a caller that looks again
    after releasing its lock anyway.
    """
    passed = 0
    renewed = time.monotonic()
    while True:
        started = time.monotonic()
        if target is None:
            live = await live_position(ctx, projection.name)
            if yield_to_handover and live.handover_requested:
                return passed
            into, checkpoint = Target(live.generation, live.generation), live.checkpoint
        else:
            if yield_to_handover and await handover_requested(ctx, projection.name):
                return passed
            into = target
            checkpoint = await checkpoint_of(ctx, projection.name, into.generation)
        events = await ctx.batch_after(checkpoint, batch_size)
        if until is not None:  # a checkpoint, so never inside a store transaction
            events = [event for event in events if event.position <= until]
        if not events:
            return passed
        try:
            if await apply_batch(ctx, projection, into, checkpoint, events, started=started):
                passed += len(events)
                if stop_when_short and len(events) < batch_size:
                    return passed
                if on_batch is not None:
                    on_batch(len(events), events[-1].position)
        except GenerationMoved:
            if target is not None:
                raise
        if lock is not None and time.monotonic() - renewed > LOCK_RENEW_S:
            await lock.reacquire()
            renewed = time.monotonic()


async def is_behind(ctx: ProjectionContext, projection: Projection) -> bool:
    live = await live_position(ctx, projection.name)
    return bool(await ctx.store.read_after(live.checkpoint, 1))


async def handover_requested(ctx: ProjectionContext, projection: str) -> bool:
    return bool(await ctx.redis.exists(ctx.keys.handover(projection)))


def runner_lock(ctx: ProjectionContext, projection: str, *, wait: bool) -> Lock:
    return ctx.redis.lock(
        ctx.keys.lock(projection),
        timeout=LOCK_TTL_S,
        blocking=wait,
        blocking_timeout=3 * LOCK_TTL_S if wait else None,
    )


async def release(lock: Lock) -> None:
    try:
        await lock.release()
    except LockError:
        logger.warning("lock %s had expired before it was released", lock.name)


async def catch_up_projection(ctx: ProjectionContext, projection: Projection, *, wait: bool) -> int:
    """Catch one projection up unless another runner holds it (then that runner will).

    After releasing the lock the runner looks once more: a job that found the lock taken exited
    trusting the holder, so events committed just before the release must not be left behind.
    While a rebuild asks for the lock (handover.py) the runner leaves the lock, and the events,
    to it: the rebuild catches up once it is done.
    """
    passed = 0
    while True:
        if await handover_requested(ctx, projection.name):
            return passed
        lock = runner_lock(ctx, projection.name, wait=wait)
        if not await lock.acquire():
            return passed
        try:
            passed += await drain(
                ctx, projection, lock=lock, yield_to_handover=True, stop_when_short=True
            )
        except LockError:
            logger.warning("%s: lost the runner lock mid catch-up; stopping", projection.name)
            return passed
        finally:
            await release(lock)
        if not await is_behind(ctx, projection):
            return passed


async def _more_announced(ctx: ProjectionContext) -> bool:
    """Whether events were announced since the last look; if not, stop being `running`.

    A short linger keeps one warm job going through the gaps of a steady load: it blocks on the
    wake list, which every raised pending flag pushes a token onto, so an announcement wakes it at
    once. While the running marker exists, publishers raise the flag without enqueueing a job. The
    marker is dropped before the last look at the flag, so an announcement either finds no marker
    (and enqueues a job) or is seen here (and this job goes round once more).
    """
    if await ctx.redis.blpop([ctx.keys.nudge_wake], timeout=LINGER_S) is not None:
        return True
    await ctx.redis.delete(ctx.keys.catch_up_running)
    if not await ctx.redis.exists(ctx.keys.nudge_pending):
        return False
    await ctx.redis.set(ctx.keys.catch_up_running, 1, ex=RUNNING_TTL_S)
    return True


async def _all_finished(runs: Iterable[Awaitable[int]]) -> list[int]:
    """Run the projections' catch-ups side by side (one works while the other waits for Redis or
    the store, and a batch of one never waits for a batch of the other); every run finishes before
    the first error is raised, so none is still writing when the job cleans up."""
    results = await asyncio.gather(*runs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, int)]


async def run_catch_up(
    settings: Settings, *, wait_for_locks: bool = False, budget_s: float = JOB_BUDGET_S
) -> dict[str, int]:
    """Catch every projection up, again and again while new nudges arrive, within `budget_s`.

    Under sustained load one job keeps going instead of a job per nudge, each with its own event
    loop, engine and clients to set up.
    """
    started = time.monotonic()
    passed = {projection.name: 0 for projection in PROJECTIONS}
    async with open_context(settings) as ctx:
        await metrics.count_catch_up_run(ctx.redis, ctx.keys.worker_metrics)
        try:
            while True:
                async with ctx.redis.pipeline(transaction=False) as round_start:
                    round_start.set(ctx.keys.catch_up_running, 1, ex=RUNNING_TTL_S)
                    round_start.delete(ctx.keys.nudge_pending, ctx.keys.nudge_wake)
                    await round_start.execute()
                counts = await _all_finished(
                    catch_up_projection(ctx, projection, wait=wait_for_locks)
                    for projection in PROJECTIONS
                )
                for projection, count in zip(PROJECTIONS, counts, strict=True):
                    passed[projection.name] += count
                if time.monotonic() - started > budget_s or not await _more_announced(ctx):
                    return passed
        finally:
            # A job that ends early (budget, error) must not leave publishers thinking it runs.
            await ctx.redis.delete(ctx.keys.catch_up_running)
