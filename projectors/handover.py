"""How a rebuild or dry run takes a projection's runner lock from the live runners, unstarved.

A live runner under steady traffic releases the runner lock and takes it again at once, so a
waiter that only polls could wait for ever. The waiter therefore first sets a handover marker;
live runners look for it between batches and, when it is there, finish their batch, release the
lock and do not take it again (`catch_up.catch_up_projection`). The waiter, polling every few
milliseconds, gets the lock within about one batch. It catches up whatever the live runners left
once it has released the lock and removed the marker; if it dies instead, the marker expires and
the sweep catches up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from projectors.catch_up import LOCK_TTL_S, ProjectionContext
from projectors.errors import RunnerLockTimeout
from projectors.lease import Lease

logger = logging.getLogger(__name__)

RUNNER_WAIT_S = 2 * LOCK_TTL_S
"""Long enough for a killed runner's lock to expire; a live runner hands over within a batch."""

_DELETE_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class HandedOver:
    runner: Lease
    waited_s: float


@asynccontextmanager
async def runner_lock_handed_over(
    ctx: ProjectionContext, projection: str, *, wait_s: float, doing: str
) -> AsyncIterator[HandedOver]:
    """Hold `projection`'s runner lock (renewed in the background) for the body of the block.

    Raises RunnerLockTimeout when it is not handed over within `wait_s`; `doing` completes the
    error's sentence ("rebuild not switched").
    """
    marker = ctx.keys.handover(projection)
    runner = Lease(ctx.redis, ctx.keys.lock(projection), LOCK_TTL_S)
    started = time.monotonic()
    await ctx.redis.set(marker, runner.guard.token, px=int((wait_s + LOCK_TTL_S) * 1000))
    try:
        if not await runner.acquire(wait_s=wait_s):
            raise RunnerLockTimeout(
                f"the {projection} runner did not hand over its lock within {wait_s:g} s; "
                f"{doing} (retry, or wait longer with --runner-wait)"
            )
        waited = time.monotonic() - started
        logger.info("%s: waited %.3f s for the runner lock", projection, waited)
        try:
            yield HandedOver(runner, waited)
        finally:
            await runner.release()
    finally:
        await ctx.redis.eval(_DELETE_IF_OURS, 1, marker, runner.guard.token)
