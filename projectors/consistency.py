"""`bank projections rebuild --dry-run`: replay the store into a scratch generation and compare it
with the live read models, key by key. Nothing live is changed.

The scratch generation fills beside the live one like a rebuild (under the rebuild lock, so the two
never meet). For the comparison itself the runner lock is taken and both generations are caught up
to the same position, so they describe the same prefix of the store. The scratch keys are deleted
afterwards whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from projectors.catch_up import (
    LOCK_TTL_S,
    ProjectionContext,
    Target,
    checkpoint_of,
    drain,
    live_generation,
    release,
    runner_lock,
)
from projectors.projection import Projection
from projectors.rebuild import RebuildError, RebuildInProgress, delete_generations

VOLATILE_FIELDS = frozenset({"advanced_at"})
"""Fields that say when a projection ran, not what it holds."""
MAX_REPORTED = 50
ALIGN_ATTEMPTS = 5


@dataclass
class Comparison:
    projection: str
    position: int
    keys_compared: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.differences


async def _content(ctx: ProjectionContext, key: str) -> Any:
    raw_kind = await ctx.redis.type(key)
    kind = raw_kind.decode() if isinstance(raw_kind, bytes) else str(raw_kind)
    if kind == "hash":
        fields = await ctx.redis.hgetall(key)
        return {k: v for k, v in fields.items() if k not in VOLATILE_FIELDS}
    if kind == "zset":
        return await ctx.redis.zrange(key, 0, -1, withscores=True)
    if kind == "string":
        return await ctx.redis.get(key)
    if kind == "set":
        return sorted(await ctx.redis.smembers(key))
    if kind == "list":
        return await ctx.redis.lrange(key, 0, -1)
    return None if kind == "none" else f"<{kind}>"


async def _suffixes(ctx: ProjectionContext, prefix: str) -> set[str]:
    return {key[len(prefix) :] async for key in ctx.redis.scan_iter(match=f"{prefix}*", count=1000)}


async def compare_generations(
    ctx: ProjectionContext, projection: str, live: int, scratch: int, position: int
) -> Comparison:
    live_prefix = ctx.keys.generation(projection, live).base + ":"
    scratch_prefix = ctx.keys.generation(projection, scratch).base + ":"
    live_keys = await _suffixes(ctx, live_prefix)
    scratch_keys = await _suffixes(ctx, scratch_prefix)
    result = Comparison(projection, position)
    for suffix in sorted(live_keys | scratch_keys):
        result.keys_compared += 1
        expected = await _content(ctx, scratch_prefix + suffix)
        actual = await _content(ctx, live_prefix + suffix)
        if expected != actual and len(result.differences) < MAX_REPORTED:
            result.differences.append(f"{suffix}: live {actual!r}, replay {expected!r}")
    return result


async def _align(ctx: ProjectionContext, projection: Projection, live: int, target: Target) -> int:
    """Catch both generations up to the same position (the runner lock is held)."""
    for _ in range(ALIGN_ATTEMPTS):
        await drain(ctx, projection)
        await drain(ctx, projection, target=target)
        live_position = await checkpoint_of(ctx, projection.name, live)
        if live_position == await checkpoint_of(ctx, projection.name, target.generation):
            return live_position
    raise RebuildError(f"{projection.name}: the store kept moving; could not compare")


async def check_projection(
    ctx: ProjectionContext,
    projection: Projection,
    on_batch: Callable[[int, int], None] | None = None,
) -> Comparison:
    rebuild_lock = ctx.redis.lock(ctx.keys.rebuild_lock(projection.name), timeout=LOCK_TTL_S)
    if not await rebuild_lock.acquire(blocking=False):
        raise RebuildInProgress(f"a rebuild of {projection.name} is running; check later")
    try:
        live = await live_generation(ctx, projection.name)
        await delete_generations(ctx, projection.name, keep=live)
        target = Target(generation=live + 1, live=live)
        try:
            await drain(ctx, projection, target=target, lock=rebuild_lock, on_batch=on_batch)
            runner = runner_lock(ctx, projection.name, wait=True)
            if not await runner.acquire():
                raise RebuildError(f"the {projection.name} runner kept its lock; nothing compared")
            try:
                await rebuild_lock.reacquire()
                position = await _align(ctx, projection, live, target)
                return await compare_generations(
                    ctx, projection.name, live, target.generation, position
                )
            finally:
                await release(runner)
        finally:
            await delete_generations(ctx, projection.name, keep=live)
    finally:
        await release(rebuild_lock)
