"""Rebuilding a projection from position 0 beside the live one, then switching atomically.

The run holds the projection's rebuild lock for its whole life (a lease, renewed in the
background; every write of the run checks it). It fills a fresh generation while the live one keeps
serving and keeps being caught up. For the last stretch it takes the runner lock (the live runners
hand it over, handover.py), so the live generation stops moving, catches the new generation up to
the end of the store, and switches the live pointer in a WATCH/MULTI that checks nobody moved it.
Only then is the old generation deleted, by its number. An interrupted rebuild never touched the
pointer; the next run deletes the generations recorded as disposable (generations.py).

Several projections rebuilt together (`--all`) share one read of the store for the long replay
(one_pass.py): each still has its own lock, scratch generation, checkpoint, handover and switch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from redis.exceptions import WatchError

from kernel.change_feed import META_FEED_FROM
from kernel.read_model_layout import META_POSITION
from projectors.catch_up import (
    LOCK_TTL_S,
    PROJECTIONS,
    ProjectionContext,
    Target,
    catch_up_projection,
    drain,
    live_generation,
)
from projectors.errors import RebuildError, RebuildInProgress, RunLostItsLock
from projectors.generations import delete_disposable, delete_generation, scratch_generation
from projectors.handover import RUNNER_WAIT_S, runner_lock_handed_over
from projectors.lease import Guard, Lease, LeaseLost
from projectors.one_pass import drain_together
from projectors.projection import Projection

__all__ = [
    "REBUILD_BATCH_SIZE",
    "RebuildError",
    "RebuildInProgress",
    "RebuildResult",
    "projection_named",
    "rebuild_lease",
    "rebuild_projection",
    "rebuild_projections",
]


SWITCH_ATTEMPTS = 5
REBUILD_BATCH_SIZE = 10_000
"""Events per batch of a rebuild. A batch costs a few Redis commands per account it touches, read
and written, so with events spread over many accounts larger batches mean far fewer commands per
event (a 1,000-event batch of `bank demo`'s traffic touches ~800 accounts); nobody waits on a
rebuild's batches, and 10,000 events keep its memory near 150 MiB."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    projection: str
    old_generation: int
    new_generation: int
    events: int
    deleted_keys: int
    runner_wait_s: float


@asynccontextmanager
async def rebuild_lease(
    ctx: ProjectionContext, projection: str, refusal: str
) -> AsyncIterator[Lease]:
    """The projection's rebuild lock for the block (shared by rebuilds and dry runs).

    Raises RebuildInProgress (`refusal`) when another run holds it, and RunLostItsLock when the
    lock was lost: by then the run has stopped writing and deleting.
    """
    lease = Lease(ctx.redis, ctx.keys.rebuild_lock(projection), LOCK_TTL_S)
    if not await lease.acquire():
        raise RebuildInProgress(refusal)
    try:
        yield lease
    except LeaseLost as exc:
        raise RunLostItsLock(
            f"{projection}: the run lost its lock ({exc}); it stopped before writing or deleting "
            "anything more, and the live read models are untouched by it"
        ) from None
    finally:
        await lease.release()


async def _switch(
    ctx: ProjectionContext, projection: Projection, old: int, new: int, guard: Guard
) -> bool:
    """Point `projection` at `new` if nobody moved the pointer, `new` is not behind `old`, and the
    run still holds its lock; `old` becomes disposable in the same transaction."""
    live_key = ctx.keys.live(projection.name)
    old_meta = ctx.keys.generation(projection.name, old).meta
    new_meta = ctx.keys.generation(projection.name, new).meta
    async with guard.watching, ctx.redis.pipeline(transaction=True) as tx:
        try:
            await tx.watch(live_key, old_meta, new_meta, guard.key)
            if await tx.get(guard.key) != guard.token:
                raise LeaseLost(f"{guard.key}: lost before the switch")
            if int(await tx.get(live_key) or 0) != old:
                raise RebuildError(
                    f"the live generation of {projection.name} changed during the rebuild"
                )
            reached = int(await tx.hget(new_meta, META_POSITION) or 0)
            if reached < int(await tx.hget(old_meta, META_POSITION) or 0):
                return False
            tx.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
            tx.set(live_key, new)
            # The scratch generation wrote no change feed: its feed starts here, and a client
            # resuming from before the switch is told to reset.
            tx.hset(new_meta, META_FEED_FROM, reached)
            tx.srem(ctx.keys.disposable(projection.name), new)
            tx.sadd(ctx.keys.disposable(projection.name), old)
            await tx.execute()
        except WatchError:
            return False
    return True


async def rebuild_projection(
    ctx: ProjectionContext,
    projection: Projection,
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
    runner_wait_s: float = RUNNER_WAIT_S,
) -> RebuildResult:
    (result,) = await rebuild_projections(
        ctx, [projection], batch_size=batch_size, on_batch=on_batch, runner_wait_s=runner_wait_s
    )
    return result


async def rebuild_projections(
    ctx: ProjectionContext,
    projections: Sequence[Projection],
    *,
    batch_size: int = REBUILD_BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
    runner_wait_s: float = RUNNER_WAIT_S,
) -> list[RebuildResult]:
    """Rebuild `projections` with one read of the store for all of them (one_pass.py), each into
    its own scratch generation under its own rebuild lock; then each in turn takes its runner lock,
    catches up the last stretch alone and switches. `on_batch` is told once per batch read."""
    async with AsyncExitStack() as stack:
        runs = [await _started(ctx, stack, projection) for projection in projections]
        passed = await drain_together(
            ctx,
            [(run.projection, run.target) for run in runs],
            batch_size=batch_size,
            on_batch=on_batch,
        )
        return [
            await _finished(ctx, run, events, batch_size, on_batch, runner_wait_s)
            for run, events in zip(runs, passed, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class _Run:
    projection: Projection
    lease: Lease
    old: int
    new: int
    scratch: AsyncExitStack
    """Holds the scratch generation: closed once the run switched (or failed)."""

    @property
    def target(self) -> Target:
        return Target(generation=self.new, live=self.old, guard=self.lease.guard)


async def _started(ctx: ProjectionContext, stack: AsyncExitStack, projection: Projection) -> _Run:
    """Take the projection's rebuild lock and a fresh scratch generation, both released by
    `stack` (the generation first, while the lock is still held)."""
    name = projection.name
    refusal = f"a rebuild of {name} is already running"
    lease = await stack.enter_async_context(rebuild_lease(ctx, name, refusal))
    await delete_disposable(ctx, name, lease.guard)  # leftovers of interrupted runs
    old = await live_generation(ctx, name)
    scratch = AsyncExitStack()
    stack.push_async_callback(scratch.aclose)
    new = await scratch.enter_async_context(scratch_generation(ctx, name, lease))
    return _Run(projection, lease, old, new, scratch)


async def _finished(
    ctx: ProjectionContext,
    run: _Run,
    events: int,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None,
    runner_wait_s: float,
) -> RebuildResult:
    """The last stretch of one run, from its scratch generation filled by the shared read: take
    the runner lock, catch up, switch, catch the live runners' events up, delete the old one."""
    projection, name = run.projection, run.projection.name
    async with (
        run.scratch,
        runner_lock_handed_over(
            ctx, name, wait_s=runner_wait_s, doing="rebuild not switched"
        ) as handed,
    ):
        for _ in range(SWITCH_ATTEMPTS):
            events += await drain(
                ctx, projection, target=run.target, batch_size=batch_size, on_batch=on_batch
            )
            if await _switch(ctx, projection, run.old, run.new, run.lease.guard):
                break
        else:
            raise RebuildError(f"could not switch {name} after {SWITCH_ATTEMPTS} tries")
    # Live jobs that left their events to us (handover) are caught up now.
    events += await catch_up_projection(ctx, projection, wait=False)
    await run.lease.ensure_held()
    deleted = await delete_generation(ctx, name, run.old, run.lease.guard)
    return RebuildResult(name, run.old, run.new, events, deleted, handed.waited_s)


def projection_named(name: str) -> Projection:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in PROJECTIONS)
    raise RebuildError(f"unknown projection {name!r}; known: {known}")
