"""The write side's publisher: after a commit, raise the head marker and nudge the projectors.

Nothing here may slow down or fail a command. `events_committed` only records the position and
starts (at most) one background flush per process, so a burst of commits becomes one round trip.
The flush raises the head key and sets the `pending` flag with NX: only the call that set the flag
enqueues an RQ job, so thousands of commands per second still make one queued job at a time (the
job clears the flag when it starts). When Redis is down the flush logs a warning and stays quiet
for a second; the worker's periodic sweep catches up whatever a lost nudge missed.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis
import redis.asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from kernel.read_model_layout import ReadModelKeys
from kernel.settings import Settings
from projectors.head import RAISE_HEAD_AND_FLAG
from projectors.jobs import enqueue_catch_up

logger = logging.getLogger(__name__)

PENDING_TTL_S = 5
"""If an enqueue is lost after the flag was set, nudges resume after this long."""
BACK_OFF_S = 1.0
SOCKET_TIMEOUT_S = 0.5


class RedisNudgePublisher:
    """An `EventPublisher` (write_side.publisher) for a write side with projections attached."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys = ReadModelKeys(settings.redis.prefix)
        self._redis: redis.asyncio.Redis | None = None
        self._script: AsyncScript | None = None
        self._rq_connection: redis.Redis | None = None
        self._announced = 0
        self._sent = 0
        self._quiet_until = 0.0
        self._flush: asyncio.Task[None] | None = None

    async def events_committed(self, stream_id: str, last_position: int) -> None:
        self._announced = max(self._announced, last_position)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_announcements())

    async def close(self) -> None:
        if self._flush is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._flush), timeout=2 * SOCKET_TIMEOUT_S)
            except TimeoutError:
                self._flush.cancel()
        if self._redis is not None:
            await self._redis.aclose()
        if self._rq_connection is not None:
            self._rq_connection.close()

    async def _flush_announcements(self) -> None:
        while self._sent < self._announced and time.monotonic() >= self._quiet_until:
            position = self._announced
            try:
                if await self._raise_head_and_flag(position):
                    await asyncio.to_thread(self._enqueue)
            except (RedisError, OSError) as exc:
                self._quiet_until = time.monotonic() + BACK_OFF_S
                logger.warning(
                    "could not nudge the projectors (position %d): %s; the sweep will catch up",
                    position,
                    exc,
                )
                return
            except Exception:
                # A bug here must still not reach the command that triggered the flush.
                self._quiet_until = time.monotonic() + BACK_OFF_S
                logger.exception("nudging the projectors failed unexpectedly")
                return
            self._sent = max(self._sent, position)

    async def _raise_head_and_flag(self, position: int) -> bool:
        if self._script is None:
            self._redis = redis.asyncio.Redis.from_url(
                self._settings.redis.url,
                socket_connect_timeout=SOCKET_TIMEOUT_S,
                socket_timeout=SOCKET_TIMEOUT_S,
            )
            self._script = self._redis.register_script(RAISE_HEAD_AND_FLAG)
        keys = [self._keys.head, self._keys.nudge_pending, self._keys.catch_up_running]
        keys.append(self._keys.nudge_wake)
        raised = await self._script(keys=keys, args=[position, PENDING_TTL_S])
        return bool(raised)

    def _enqueue(self) -> None:
        """Runs in a thread: RQ's enqueue is synchronous."""
        if self._rq_connection is None:
            self._rq_connection = redis.Redis.from_url(
                self._settings.redis.url,
                socket_connect_timeout=SOCKET_TIMEOUT_S,
                socket_timeout=SOCKET_TIMEOUT_S,
            )
        enqueue_catch_up(self._rq_connection, self._settings, reason="nudge")
