"""One reader of the change feed per query-API process, fanned out to every `/stream` client.

A single task follows the live generation's stream with a blocking XREAD and puts each change on
the bounded queue of every subscriber. Putting never waits: a client too slow to keep up has its
queue overflow and is ended (its EventSource reconnects with `Last-Event-ID` and resumes from the
stream), so it never holds up the other clients, the hub, or the projector. Idle subscribers cost
one queue each and nothing in Redis. The hub starts with its first subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kernel.change_feed import FEED_PROJECTION, Change
from kernel.read_model_layout import FIRST_GENERATION, ReadModelKeys
from read_side.change_log import Entries, entry_to_change
from read_side.metrics import STREAM_SUBSCRIBERS

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000
"""Changes a subscriber may fall behind the hub before it is ended."""
BLOCK_MS = 1000
"""How long one XREAD waits; the hub looks at the live generation between reads."""
READ_COUNT = 500
RETRY_S = 0.5
"""Pause after a Redis error before the hub reads again."""


class Subscription:
    """What one `/stream` client receives: changes, or `None` once it has been dropped."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE + 1)
        self.dropped = False

    def offer(self, change: Change) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= QUEUE_SIZE:
            self.dropped = True
            self.queue.put_nowait(None)  # the one spare slot: tells the client to go
            return
        self.queue.put_nowait(change)


class ChangeHub:
    def __init__(self, redis: Redis, keys: ReadModelKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def subscribe(self) -> Subscription:
        """A new subscription; every change the hub reads after this returns reaches it."""
        subscription = Subscription()
        self._subscribers.add(subscription)
        STREAM_SUBSCRIBERS.inc()
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="change-hub")
        await self._started.wait()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.discard(subscription)
            STREAM_SUBSCRIBERS.dec()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _stream_key(self) -> str:
        live = int(await self._redis.get(self._keys.live(FEED_PROJECTION)) or FIRST_GENERATION)
        return self._keys.generation(FEED_PROJECTION, live).changes

    async def _follow(self) -> None:
        last = "0-0"
        while True:
            try:
                key = await self._stream_key()
                if not self._started.is_set():
                    newest = cast(Entries, await self._redis.xrevrange(key, count=1))
                    last = newest[0][0] if newest else "0-0"
                    self._started.set()
                replies = cast(
                    list[tuple[str, Entries]],
                    await self._redis.xread({key: last}, count=READ_COUNT, block=BLOCK_MS),
                )
            except RedisError as exc:
                logger.warning("change hub: Redis error (%s); retrying", exc)
                self._started.set()  # subscribers get changes once Redis is back
                await asyncio.sleep(RETRY_S)
                continue
            for _stream, entries in replies or []:
                for entry_id, fields in entries:
                    last = entry_id
                    change = entry_to_change(entry_id, fields)
                    for subscription in list(self._subscribers):
                        subscription.offer(change)
