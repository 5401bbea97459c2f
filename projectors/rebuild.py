"""Rebuilding a projection from position 0 beside the live one, then switching atomically.

The new generation fills while the live one keeps serving and keeps being caught up. For the last
stretch the rebuild takes the projection's runner lock, so the live generation stops moving, catches
the new generation up to the end of the store, and switches the live pointer in a WATCH/MULTI that
checks nobody moved it. Only then is the old generation deleted (SCAN + UNLINK in batches). An
interrupted rebuild never touched the pointer; the next run first deletes every non-live generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import WatchError

from kernel.settings import Settings
from projectors.catch_up import (
    BATCH_SIZE,
    LOCK_TTL_S,
    PROJECTIONS,
    ProjectionContext,
    Target,
    catch_up_projection,
    drain,
    live_generation,
    open_context,
    release,
    runner_lock,
)
from projectors.projection import Projection

UNLINK_BATCH = 500
SWITCH_ATTEMPTS = 5


class RebuildError(RuntimeError):
    """A rebuild could not start or could not finish; the live generation is untouched."""


class RebuildInProgress(RebuildError):
    """Another rebuild of the same projection holds its rebuild lock."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    projection: str
    old_generation: int
    new_generation: int
    events: int
    deleted_keys: int


async def delete_generations(ctx: ProjectionContext, projection: str, *, keep: int) -> int:
    """UNLINK every key of every generation of `projection` except `keep`; returns how many."""
    deleted = 0
    batch: list[str] = []
    async for key in ctx.redis.scan_iter(
        match=ctx.keys.generations_pattern(projection), count=1000
    ):
        generation = ctx.keys.generation_of_key(key)
        if generation is None or generation == keep:
            continue
        batch.append(key)
        if len(batch) >= UNLINK_BATCH:
            deleted += await ctx.redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await ctx.redis.unlink(*batch)
    return deleted


async def _switch(ctx: ProjectionContext, projection: Projection, old: int, new: int) -> bool:
    """Point `projection` at `new` if nobody moved the pointer and `new` is not behind `old`."""
    live_key = ctx.keys.live(projection.name)
    old_meta = ctx.keys.generation(projection.name, old).meta
    new_meta = ctx.keys.generation(projection.name, new).meta
    async with ctx.redis.pipeline(transaction=True) as tx:
        try:
            await tx.watch(live_key, old_meta, new_meta)
            if int(await tx.get(live_key) or 0) != old:
                raise RebuildError(
                    f"the live generation of {projection.name} changed during the rebuild"
                )
            behind = int(await tx.hget(new_meta, "position") or 0) < int(
                await tx.hget(old_meta, "position") or 0
            )
            if behind:
                return False
            tx.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
            tx.set(live_key, new)
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
) -> RebuildResult:
    rebuild_lock = ctx.redis.lock(ctx.keys.rebuild_lock(projection.name), timeout=LOCK_TTL_S)
    if not await rebuild_lock.acquire(blocking=False):
        raise RebuildInProgress(f"a rebuild of {projection.name} is already running")
    try:
        old = await live_generation(ctx, projection.name)
        await delete_generations(ctx, projection.name, keep=old)  # leftovers of an interrupted run
        target = Target(generation=old + 1, live=old)
        events = await drain(
            ctx,
            projection,
            target=target,
            lock=rebuild_lock,
            batch_size=batch_size,
            on_batch=on_batch,
        )
        runner = runner_lock(ctx, projection.name, wait=True)
        if not await runner.acquire():
            raise RebuildError(f"the {projection.name} runner kept its lock; rebuild not switched")
        try:
            for _ in range(SWITCH_ATTEMPTS):
                await rebuild_lock.reacquire()
                events += await drain(
                    ctx,
                    projection,
                    target=target,
                    lock=runner,
                    batch_size=batch_size,
                    on_batch=on_batch,
                )
                if await _switch(ctx, projection, old, target.generation):
                    break
            else:
                raise RebuildError(
                    f"could not switch {projection.name} after {SWITCH_ATTEMPTS} tries"
                )
        finally:
            await release(runner)
        # Live jobs that found the runner lock taken left their events to us: catch them up.
        events += await catch_up_projection(ctx, projection, wait=False)
        deleted = await delete_generations(ctx, projection.name, keep=target.generation)
    finally:
        await release(rebuild_lock)
    return RebuildResult(projection.name, old, target.generation, events, deleted)


def projection_named(name: str) -> Projection:
    for projection in PROJECTIONS:
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in PROJECTIONS)
    raise RebuildError(f"unknown projection {name!r}; known: {known}")


async def _rebuild(settings: Settings, name: str, batch_size: int) -> RebuildResult:
    async with open_context(settings) as ctx:
        return await rebuild_projection(ctx, projection_named(name), batch_size=batch_size)


def run_rebuild(settings: Settings, name: str, *, batch_size: int = BATCH_SIZE) -> RebuildResult:
    """For a `bank rebuild NAME` command: rebuild one projection and report what happened."""
    return asyncio.run(_rebuild(settings, name, batch_size))
