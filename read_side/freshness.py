"""Read-your-writes: wait until a projection has applied the position a command returned.

Many requests may be waiting at once (a dashboard right after a burst of commands). If each polled
Redis itself, the polls would crowd out the reads they wait for. So the first look is the
request's own (one read, the common case being "already there"), and after that every waiting
request of the process shares one poller that reads each projection's checkpoint every couple of
milliseconds while anyone waits and wakes the requests whose position has been reached.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.exceptions import RedisError

from read_side.errors import ProjectionBehind
from read_side.readers import ReadModelReader

POLL_S = 0.002


class CheckpointWatcher:
    """One per query-API process (created in the app's lifespan)."""

    def __init__(self, reader: ReadModelReader, poll_s: float = POLL_S) -> None:
        self._reader = reader
        self._poll_s = poll_s
        self._waiting: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._latest: dict[str, int] = {}
        self._poller: asyncio.Task[None] | None = None

    async def wait_for(self, projection: str, position: int, wait_ms: int) -> None:
        """Return once `projection` has reached `position`; ProjectionBehind after `wait_ms`."""
        checkpoint = await self._reader.checkpoint(projection)
        if checkpoint >= position:
            return
        loop = asyncio.get_running_loop()
        waiter = (position, loop.create_future())
        self._waiting.setdefault(projection, []).append(waiter)
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll())
        try:
            await asyncio.wait_for(waiter[1], wait_ms / 1000)
        except TimeoutError:
            latest = self._latest.get(projection, checkpoint)
            raise ProjectionBehind(projection, latest, position) from None
        finally:
            with contextlib.suppress(ValueError, KeyError):
                self._waiting[projection].remove(waiter)

    async def _poll(self) -> None:
        while any(self._waiting.values()):
            for projection, waiters in list(self._waiting.items()):
                if not waiters:
                    continue
                try:
                    checkpoint = await self._reader.checkpoint(projection)
                except RedisError as exc:  # each waiting request answers 503 redis_unavailable
                    for _, future in waiters:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._latest[projection] = checkpoint
                for position, future in waiters:
                    if position <= checkpoint and not future.done():
                        future.set_result(None)
            await asyncio.sleep(self._poll_s)
