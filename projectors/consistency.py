"""`bank projections rebuild --dry-run`: replay the store into a scratch generation and compare it
with the live read models, key by key. Nothing live is changed.

The scratch generation fills beside the live one like a rebuild, under the same rebuild lock (a
lease held for the whole run; every scratch write checks it). The comparison is made at one
consistent cut: with the runner lock handed over (handover.py), both generations are caught up to
the same position, compared, and the live checkpoint and pointer are read again afterwards. If
either moved (a lock lapsed and a live runner wrote meanwhile), the compare is not trusted and is
made again, so live traffic never shows up as a difference. The scratch generation is deleted
afterwards, by its number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kernel.change_feed import META_FEED_FROM, META_FEED_TIP
from kernel.read_model_layout import META_ADVANCED_AT
from projectors.catch_up import (
    ProjectionContext,
    Target,
    catch_up_projection,
    checkpoint_of,
    drain,
    live_generation,
)
from projectors.errors import RebuildError
from projectors.generations import delete_disposable, scratch_generation
from projectors.handover import RUNNER_WAIT_S, HandedOver, runner_lock_handed_over
from projectors.lease import Lease
from projectors.projection import Projection
from projectors.rebuild import rebuild_lease

VOLATILE_FIELDS = frozenset({META_ADVANCED_AT, META_FEED_FROM, META_FEED_TIP})
"""Fields that say when a projection ran (or what it fed the change feed), not what it holds."""
MAX_REPORTED = 50
ALIGN_ATTEMPTS = 5
COMPARE_CHUNK = 500
"""Keys read per pipelined round trip while comparing."""


@dataclass
class Comparison:
    projection: str
    position: int
    keys_compared: int = 0
    differences: list[str] = field(default_factory=list)
    runner_wait_s: float = 0.0

    @property
    def consistent(self) -> bool:
        return not self.differences


def _reader(pipe: Any, key: str, kind: str) -> None:
    """Queue the command that reads a key of type `kind` in full."""
    if kind == "hash":
        pipe.hgetall(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True)
    elif kind == "string":
        pipe.get(key)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    else:
        pipe.type(key)  # nothing to read; keeps the replies in step with the keys


def _comparable(kind: str, raw: Any) -> Any:
    if kind == "hash":
        return {k: v for k, v in raw.items() if k not in VOLATILE_FIELDS}
    if kind == "set":
        return sorted(raw)
    if kind in ("zset", "string", "list"):
        return raw
    return None if kind == "none" else f"<{kind}>"


async def _contents(ctx: ProjectionContext, keys: Sequence[str]) -> list[Any]:
    """What each key holds, in two pipelined round trips for all of them."""
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        kinds = [str(kind) for kind in await pipe.execute()]
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for key, kind in zip(keys, kinds, strict=True):
            _reader(pipe, key, kind)
        raws = await pipe.execute()
    return [_comparable(kind, raw) for kind, raw in zip(kinds, raws, strict=True)]


async def _suffixes(ctx: ProjectionContext, prefix: str) -> set[str]:
    return {key[len(prefix) :] async for key in ctx.redis.scan_iter(match=f"{prefix}*", count=1000)}


async def compare_generations(
    ctx: ProjectionContext, projection: str, live: int, scratch: int, position: int
) -> Comparison:
    live_prefix = ctx.keys.generation(projection, live).base + ":"
    scratch_prefix = ctx.keys.generation(projection, scratch).base + ":"
    # The change feed is a log of what the live generation published, not a read model: a
    # scratch generation writes none.
    feed = ctx.keys.generation(projection, live).changes.removeprefix(live_prefix)
    found = await _suffixes(ctx, live_prefix) | await _suffixes(ctx, scratch_prefix)
    suffixes = sorted(found - {feed})
    result = Comparison(projection, position, keys_compared=len(suffixes))
    for first in range(0, len(suffixes), COMPARE_CHUNK):
        chunk = suffixes[first : first + COMPARE_CHUNK]
        contents = await _contents(
            ctx, [scratch_prefix + s for s in chunk] + [live_prefix + s for s in chunk]
        )
        for suffix, expected, actual in zip(
            chunk, contents[: len(chunk)], contents[len(chunk) :], strict=True
        ):
            if expected != actual and len(result.differences) < MAX_REPORTED:
                result.differences.append(f"{suffix}: live {actual!r}, replay {expected!r}")
    return result


async def _align(ctx: ProjectionContext, projection: Projection, live: int, target: Target) -> int:
    """Catch both generations up to the same position (the runner lock is held).

    The live one goes to the end of the store, the scratch one to exactly there: under traffic the
    end moves on meanwhile, and the scratch one must not follow it.
    """
    for _ in range(ALIGN_ATTEMPTS):
        await drain(ctx, projection)
        live_position = await checkpoint_of(ctx, projection.name, live)
        await drain(ctx, projection, target=target, until=live_position)
        if live_position == await checkpoint_of(ctx, projection.name, target.generation):
            return live_position
    raise RebuildError(f"{projection.name}: the store kept moving; could not compare")


async def _compare_at_one_cut(
    ctx: ProjectionContext, projection: Projection, target: Target, lease: Lease, handed: HandedOver
) -> Comparison:
    for _ in range(ALIGN_ATTEMPTS):
        position = await _align(ctx, projection, target.live, target)
        comparison = await compare_generations(
            ctx, projection.name, target.live, target.generation, position
        )
        await lease.ensure_held()
        await handed.runner.ensure_held()
        still = await checkpoint_of(ctx, projection.name, target.live) == position
        if still and await live_generation(ctx, projection.name) == target.live:
            comparison.runner_wait_s = handed.waited_s
            return comparison
    raise RebuildError(f"{projection.name}: the live models kept moving during the compare")


async def check_projection(
    ctx: ProjectionContext,
    projection: Projection,
    on_batch: Callable[[int, int], None] | None = None,
    *,
    runner_wait_s: float = RUNNER_WAIT_S,
) -> Comparison:
    name = projection.name
    async with rebuild_lease(ctx, name, f"a rebuild of {name} is running; check later") as lease:
        await delete_disposable(ctx, name, lease.guard)  # leftovers of interrupted runs
        live = await live_generation(ctx, name)
        async with scratch_generation(ctx, name, lease) as scratch:
            target = Target(generation=scratch, live=live, guard=lease.guard)
            await drain(ctx, projection, target=target, on_batch=on_batch)
            async with runner_lock_handed_over(
                ctx, name, wait_s=runner_wait_s, doing="nothing compared"
            ) as handed:
                comparison = await _compare_at_one_cut(ctx, projection, target, lease, handed)
        # Live jobs that left their events to us (handover) are caught up now.
        await catch_up_projection(ctx, projection, wait=False)
    return comparison
