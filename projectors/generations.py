"""Generation numbers for rebuilds and dry runs, and deleting generations that are not live.

Every run fills a generation whose number nobody used before (a counter that only goes up), so two
runs can never write into the same one. A generation that is not live is recorded as disposable
when it is created (a scratch generation) or replaced (the old live one, in the switch's own
transaction), and is deleted by its exact number, never as "everything but the live one I saw".
Deletion goes batch by batch through a script that checks, atomically with each UNLINK, that the
caller still holds its lock and that the generation is not the live one: nothing can make it
delete what readers are reading.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kernel.read_model_layout import FIRST_GENERATION
from projectors.catch_up import ProjectionContext, live_generation
from projectors.errors import RebuildError
from projectors.lease import Guard, Lease, LeaseLost

logger = logging.getLogger(__name__)

UNLINK_BATCH = 500
LOCK_LOST = -1
IS_LIVE = -2

# KEYS: guard lock, counter, live pointer, disposable set. ARGV: token, first generation.
_ALLOCATE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local live = tonumber(redis.call('GET', KEYS[3]) or ARGV[2])
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n < live then n = live end
n = n + 1
redis.call('SET', KEYS[2], n)
redis.call('SADD', KEYS[4], n)
return n
"""

# KEYS: guard lock, live pointer, then the keys to delete. ARGV: token, generation, first generation.
_UNLINK_UNLESS_LIVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if (redis.call('GET', KEYS[2]) or ARGV[3]) == ARGV[2] then return -2 end
local deleted = 0
for i = 3, #KEYS do
  deleted = deleted + redis.call('UNLINK', KEYS[i])
end
return deleted
"""


async def allocate_generation(ctx: ProjectionContext, projection: str, guard: Guard) -> int:
    """A never-used generation number above the live one, recorded as disposable until switched."""
    while True:
        keys = ctx.keys
        generation = int(
            await ctx.redis.eval(
                _ALLOCATE,
                4,
                guard.key,
                keys.generation_counter(projection),
                keys.live(projection),
                keys.disposable(projection),
                guard.token,
                FIRST_GENERATION,
            )
        )
        if generation == LOCK_LOST:
            raise LeaseLost(f"{guard.key}: lost before a generation was allocated")
        # Keys left under this number by a version that reused numbers: skip it, it is disposable.
        if not await ctx.redis.exists(keys.generation(projection, generation).meta):
            return generation


async def delete_generation(
    ctx: ProjectionContext, projection: str, generation: int, guard: Guard
) -> int:
    """UNLINK every key of one generation (never the live one); returns how many."""
    live_key = ctx.keys.live(projection)
    deleted = 0
    batch: list[str] = []

    async def unlink() -> None:
        nonlocal deleted
        args = (guard.token, generation, FIRST_GENERATION)
        done = int(
            await ctx.redis.eval(
                _UNLINK_UNLESS_LIVE, 2 + len(batch), guard.key, live_key, *batch, *args
            )
        )
        if done == LOCK_LOST:
            raise LeaseLost(f"{guard.key}: lost while deleting g{generation}")
        if done == IS_LIVE:
            raise RebuildError(
                f"refused to delete generation {generation} of {projection}: it is live"
            )
        deleted += done
        batch.clear()

    pattern = ctx.keys.generation_pattern(projection, generation)
    async for key in ctx.redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= UNLINK_BATCH:
            await unlink()
    if batch:
        await unlink()
    await ctx.redis.srem(ctx.keys.disposable(projection), generation)
    return deleted


async def delete_disposable(
    ctx: ProjectionContext, projection: str, guard: Guard, *, keep: int | None = None
) -> int:
    """Delete every recorded disposable generation but `keep`: scratch generations of interrupted
    runs, and old live ones a rebuild replaced but did not get to delete."""
    members = await ctx.redis.smembers(ctx.keys.disposable(projection))
    deleted = 0
    for generation in sorted(int(member) for member in members):
        if generation == keep:
            continue
        if generation == await live_generation(ctx, projection):
            logger.warning("%s: generation %d is live, not disposable", projection, generation)
            await ctx.redis.srem(ctx.keys.disposable(projection), generation)
            continue
        deleted += await delete_generation(ctx, projection, generation, guard)
    return deleted


@asynccontextmanager
async def scratch_generation(
    ctx: ProjectionContext, projection: str, lease: Lease
) -> AsyncIterator[int]:
    """A fresh generation for the block; deleted afterwards unless it became live, or the lease was
    lost (then the next run deletes it: a run without its lock deletes nothing)."""
    generation = await allocate_generation(ctx, projection, lease.guard)
    try:
        yield generation
    finally:
        if not lease.lost and await live_generation(ctx, projection) != generation:
            try:
                await delete_generation(ctx, projection, generation, lease.guard)
            except LeaseLost:
                logger.warning(
                    "%s: lock lost; scratch g%d left for the next run", projection, generation
                )
