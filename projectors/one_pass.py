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

A rebuild's scratch generation, filled from empty by this run alone, is staged from memory
(remembered.py): its batches read no state back from Redis. Any other target (a live generation,
one that did not start empty) reads its state as `catch_up.drain` does, and so does a scratch
target whose memory no longer stands at its checkpoint (a refused batch).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from kernel.events import RecordedEvent
from projectors.balances import BalancesProjection, RememberedBalances
from projectors.batches import read_batch
from projectors.catch_up import ProjectionContext, Target, apply_batch, checkpoint_of
from projectors.head import RAISE_HEAD
from projectors.projection import Projection
from projectors.remembered import Remembering
from projectors.statements import RememberedStatements, StatementsProjection


async def _read(ctx: ProjectionContext, after: int, size: int) -> list[RecordedEvent]:
    return await ctx.revealed(await read_batch(ctx.store, after, size))


def _remembering(projection: Projection, target: Target, checkpoint: int) -> Remembering | None:
    """A remembering stand-in for `projection` when `target` is a scratch generation this run
    fills alone from empty (a guarded target other than the live one, at checkpoint 0)."""
    if target.guard is None or target.generation == target.live or checkpoint != 0:
        return None
    if isinstance(projection, BalancesProjection):
        return RememberedBalances()
    if isinstance(projection, StatementsProjection):
        return RememberedStatements()
    return None


@dataclass(slots=True)
class _Feed:
    """One target of the shared read: its checkpoint, and what it remembers if anything."""

    projection: Projection
    target: Target
    checkpoint: int
    remembered: Remembering | None
    passed: int = 0

    async def apply(
        self, ctx: ProjectionContext, events: list[RecordedEvent], started: float
    ) -> None:
        """Apply the events after the checkpoint; a refused batch (the checkpoint moved) is read
        again on the next round."""
        mine = [event for event in events if event.position > self.checkpoint]
        if not mine:
            return
        remembered = self.remembered
        if remembered is not None and remembered.memory.position != self.checkpoint:
            remembered = self.remembered = None  # moved without us: read the state from now on
        stager = remembered or self.projection
        try:
            applied = await apply_batch(
                ctx, stager, self.target, self.checkpoint, mine, started=started
            )
        except BaseException:
            if remembered is not None:
                remembered.memory.drop()
            raise
        if not applied:  # refused: the checkpoint moved
            if remembered is not None:
                remembered.memory.drop()
            return
        if remembered is not None:
            remembered.memory.keep()
        self.passed += len(mine)

    async def reread(self, ctx: ProjectionContext) -> int:
        self.checkpoint = await checkpoint_of(ctx, self.projection.name, self.target.generation)
        return self.checkpoint


async def drain_together(
    ctx: ProjectionContext,
    targets: Sequence[tuple[Projection, Target]],
    *,
    batch_size: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Apply batches to every target until the store has nothing more; return how many events
    each target was passed. `on_batch(events_read, position)` is told once per batch read."""
    feeds = []
    for projection, target in targets:
        checkpoint = await checkpoint_of(ctx, projection.name, target.generation)
        remembered = _remembering(projection, target, checkpoint)
        feeds.append(_Feed(projection, target, checkpoint, remembered))
    ahead: asyncio.Task[list[RecordedEvent]] | None = None
    try:
        while True:
            started = time.monotonic()
            lowest = min(feed.checkpoint for feed in feeds)
            events = await ahead if ahead is not None else await _read(ctx, lowest, batch_size)
            ahead = None
            if not events:
                return [feed.passed for feed in feeds]
            last = events[-1].position
            ahead = asyncio.create_task(_read(ctx, last, batch_size))
            await _each_finished(feed.apply(ctx, events, started) for feed in feeds)
            if any([await feed.reread(ctx) != last for feed in feeds]):
                await _discard(ahead)
                ahead = None
            await ctx.redis.eval(RAISE_HEAD, 1, ctx.keys.head, last)
            if on_batch is not None:
                on_batch(len(events), last)
    finally:
        if ahead is not None:
            await _discard(ahead)


async def _each_finished(applies: Iterable[Awaitable[None]]) -> None:
    """Run the applies side by side and let every one finish before raising the first error:
    none may still be writing once the caller starts cleaning up after that error."""
    results = await asyncio.gather(*applies, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _discard(task: asyncio.Task[list[RecordedEvent]]) -> None:
    """Stop a read ahead nobody will use; its failure, if it had one, does not matter."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost
