"""Read-your-writes: wait until a projection has applied the position a command returned.

Many requests may be waiting at once (a dashboard right after a burst of commands). If each polled
Redis itself, the polls would crowd out the reads they wait for. So the first look is the
request's own (one read, the common case being "already there"); after that the waiting requests
of the process are woken together.

What wakes them is the workers' announcement: every batch applied to a live generation publishes
its projection's new checkpoint on a channel in the batch's MULTI/EXEC
(`ReadModelKeys.checkpoints`), and one subscription per process, on a connection of its own, wakes
the requests whose position it reached: no poll interval, no round trip. A shared poller still reads the checkpoints while anyone
waits, every `FALLBACK_POLL_S` while the subscription listens (for what no batch announces: a
rebuild's switch, a message lost with a connection) and every `POLL_S` while it does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kernel.read_model_layout import parse_checkpoint_message
from read_side.errors import ProjectionBehind
from read_side.readers import ReadModelReader

logger = logging.getLogger(__name__)

POLL_S = 0.002
FALLBACK_POLL_S = 0.1
LISTEN_S = 1.0
"""How long one read of the subscription waits for a message (then it reads again)."""
RESUBSCRIBE_S = 0.5
"""Pause after the subscription failed before it subscribes again."""


class CheckpointWatcher:
    """One per query-API process (created in the app's lifespan, closed at its end).

    `subscriber` is the client the announcements are followed on (a connection of its own that
    blocks in a read); without one the watcher only polls.
    """

    def __init__(
        self,
        reader: ReadModelReader,
        subscriber: Redis | None = None,
        channel: str = "",
        *,
        poll_s: float = POLL_S,
        fallback_poll_s: float = FALLBACK_POLL_S,
    ) -> None:
        self._reader = reader
        self._subscriber = subscriber
        self._channel = channel
        self._poll_s = poll_s
        self._fallback_poll_s = fallback_poll_s
        self._waiting: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._latest: dict[str, int] = {}
        self._listening = False
        self._poller: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    async def wait_for(self, projection: str, position: int, wait_ms: int) -> None:
        """Return once `projection` has reached `position`; ProjectionBehind after `wait_ms`."""
        checkpoint = await self._reader.checkpoint(projection)
        if checkpoint >= position:
            return
        loop = asyncio.get_running_loop()
        waiter = (position, loop.create_future())
        self._waiting.setdefault(projection, []).append(waiter)
        if self._subscriber is not None and self._listener is None:
            self._listener = loop.create_task(self._listen(self._subscriber))
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

    async def close(self) -> None:
        for task in (self._listener, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _reached(self, projection: str, checkpoint: int) -> None:
        self._latest[projection] = max(checkpoint, self._latest.get(projection, 0))
        for position, future in self._waiting.get(projection, ()):
            if position <= checkpoint and not future.done():
                future.set_result(None)

    async def _look(self) -> None:
        """Read the checkpoint of every projection someone waits for, and wake who it reached."""
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
            self._reached(projection, checkpoint)

    async def _poll(self) -> None:
        while any(self._waiting.values()):
            await self._look()
            await asyncio.sleep(self._fallback_poll_s if self._listening else self._poll_s)

    async def _listen(self, subscriber: Redis) -> None:
        """Follow the announcements for the life of the process, subscribing again after errors.
        A checkpoint announced is one the live generation has reached (a rebuild's switch only
        ever moves it on), so it wakes its waiters without another read."""
        while True:
            pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._listening = True
                await self._look()  # what was announced before the subscription took effect
                while True:
                    message: dict[str, Any] | None = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=LISTEN_S
                    )
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        text = data.decode() if isinstance(data, bytes) else str(data)
                        parsed = parse_checkpoint_message(text)
                        if parsed is not None:
                            self._reached(*parsed)
            except (RedisError, OSError) as exc:
                logger.warning("checkpoint announcements: Redis error (%s); polling", exc)
            finally:
                self._listening = False
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            await asyncio.sleep(RESUBSCRIBE_S)
