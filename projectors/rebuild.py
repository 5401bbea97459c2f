"""Rebuilding a projection from position 0 beside the live one, then switching atomically.

The run holds the projection's rebuild lock for its whole life (a lease, renewed in the
background; every write of the run checks it). It fills a fresh generation while the live one keeps
serving and keeps being caught up. For the last stretch it takes the runner lock (the live runners
hand it over, handover.py), so the live generation stops moving, catches the new generation up to
the end of the store, and switches the live pointer in a WATCH/MULTI that checks nobody moved it.
Only then is the old generation deleted, by its number. An interrupted rebuild never touched the
pointer; the next run deletes the generations recorded as disposable (generations.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.exceptions import WatchError

from kernel.change_feed import META_FEED_FROM
from kernel.read_model_layout import META_POSITION
from projectors.catch_up import (
    BATCH_SIZE,
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
from projectors.projection import Projection

__all__ = [
    "RebuildError",
    "RebuildInProgress",
    "RebuildResult",
    "projection_named",
    "rebuild_lease",
    "rebuild_projection",
]


SWITCH_ATTEMPTS = 5


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
    async with ctx.redis.pipeline(transaction=True) as tx:
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
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
    runner_wait_s: float = RUNNER_WAIT_S,
) -> RebuildResult:
    name = projection.name
    async with rebuild_lease(ctx, name, f"a rebuild of {name} is already running") as lease:
        await delete_disposable(ctx, name, lease.guard)  # leftovers of interrupted runs
        old = await live_generation(ctx, name)
        async with scratch_generation(ctx, name, lease) as new:
            target = Target(generation=new, live=old, guard=lease.guard)
            events = await drain(
                ctx, projection, target=target, batch_size=batch_size, on_batch=on_batch
            )
            async with runner_lock_handed_over(
                ctx, name, wait_s=runner_wait_s, doing="rebuild not switched"
            ) as handed:
                for _ in range(SWITCH_ATTEMPTS):
                    events += await drain(
                        ctx, projection, target=target, batch_size=batch_size, on_batch=on_batch
                    )
                    if await _switch(ctx, projection, old, new, lease.guard):
                        break
                else:
                    raise RebuildError(f"could not switch {name} after {SWITCH_ATTEMPTS} tries")
        # Live jobs that left their events to us (handover) are caught up now.
        events += await catch_up_projection(ctx, projection, wait=False)
        await lease.ensure_held()
        deleted = await delete_generation(ctx, name, old, lease.guard)
    return RebuildResult(name, old, new, events, deleted, handed.waited_s)


def projection_named(name: str) -> Projection:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in PROJECTIONS)
    raise RebuildError(f"unknown projection {name!r}; known: {known}")
