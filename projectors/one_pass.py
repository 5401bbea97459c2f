"""Feeding several projections from one read of the store (`bank projections rebuild --all`).

A rebuild of every projection used to read the whole store once per projection. Here each batch
is read (and its personal data revealed) once, then applied to every target, each in its own
transaction with its own checkpoint, guard and WATCHes (`catch_up.apply_batch`), exactly as
`catch_up.drain` would apply it. The read starts at the lowest of the targets' checkpoints; a
target that is further on gets only the events after its own checkpoint (a checkpoint is always a
store-transaction boundary, so that suffix never splits a transaction).

The targets' transactions run side by side, and the next batch is read while they run: the
process spends much of a batch waiting for Redis to execute a large MULTI/EXEC, and PostgreSQL to
answer, which is time the other steps can use. A batch read ahead is used only if every target
ended exactly where it starts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from kernel.events import RecordedEvent
from projectors.batches import read_batch
from projectors.catch_up import ProjectionContext, Target, apply_batch, checkpoint_of
from projectors.head import RAISE_HEAD
from projectors.projection import Projection


async def _read(ctx: ProjectionContext, after: int, size: int) -> list[RecordedEvent]:
    return await ctx.revealed(await read_batch(ctx.store, after, size))


async def _apply(
    ctx: ProjectionContext,
    projection: Projection,
    target: Target,
    checkpoint: int,
    events: list[RecordedEvent],
    started: float,
) -> int:
    """How many events the target took: those after its checkpoint, or none if it moved."""
    mine = [event for event in events if event.position > checkpoint]
    if mine and await apply_batch(ctx, projection, target, checkpoint, mine, started=started):
        return len(mine)
    return 0  # a refused batch (the checkpoint moved) is read again on the next round


async def drain_together(
    ctx: ProjectionContext,
    targets: Sequence[tuple[Projection, Target]],
    *,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Apply batches to every target until the store has nothing more; return how many events
    each target was passed. `on_batch(events_read, position)` is told once per batch read."""
    passed = [0] * len(targets)
    checkpoints = [await checkpoint_of(ctx, p.name, t.generation) for p, t in targets]
    ahead: asyncio.Task[list[RecordedEvent]] | None = None
    try:
        while True:
            started = time.monotonic()
            lowest = min(checkpoints)
            events = await ahead if ahead is not None else await _read(ctx, lowest, batch_size)
            ahead = None
            if not events:
                return passed
            last = events[-1].position
            ahead = asyncio.create_task(_read(ctx, last, batch_size))
            taken = await _each_finished(
                _apply(ctx, projection, target, checkpoint, events, started)
                for (projection, target), checkpoint in zip(targets, checkpoints, strict=True)
            )
            passed = [total + n for total, n in zip(passed, taken, strict=True)]
            checkpoints = [await checkpoint_of(ctx, p.name, t.generation) for p, t in targets]
            if any(checkpoint != last for checkpoint in checkpoints):
                await _discard(ahead)
                ahead = None
            await ctx.redis.eval(RAISE_HEAD, 1, ctx.keys.head, last)
            if on_batch is not None:
                on_batch(len(events), last)
    finally:
        if ahead is not None:
            await _discard(ahead)


async def _each_finished(applies: Iterable[Awaitable[int]]) -> list[int]:
    """Run the applies side by side and let every one finish before raising the first error:
    none may still be writing once the caller starts cleaning up after that error."""
    results = await asyncio.gather(*applies, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, int)]


async def _discard(task: asyncio.Task[list[RecordedEvent]]) -> None:
    """Stop a read ahead nobody will use; its failure, if it had one, does not matter."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost
