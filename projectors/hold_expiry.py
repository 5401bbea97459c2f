"""Expiring holds on time: a loop in the worker process that appends `HoldExpired` for every
pending hold whose `expires_at` has passed.

Every `EXPIRY_INTERVAL_S` it reads the due ids from the live balances generation's due set
(`GenerationKeys.holds_due`, kept by projectors/holds.py) and asks the write side to expire each
(`HoldRunner.expire`), which decides on the accounts in the store, never on Redis: a hold that a
capture or void resolved meanwhile is simply not pending there any more. Exactly once holds because
a resolution appends on both accounts with their expected versions and claims the hold's
resolution row (write_side/hold_resolution.py), so a racing capture, void or second worker loses cleanly.

Deadlines missed while no worker ran are found on the next start: the due set is in Redis, which
the projection keeps, and a rebuilt one is filled again from the store. The events say who
expired them: metadata `{"actor": "system"}`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import cast

import sqlalchemy.exc
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kernel.read_model_layout import BALANCES, FIRST_GENERATION, ReadModelKeys
from kernel.settings import Settings
from projectors.nudge import RedisNudgePublisher
from write_side.command_bus import CommandBus
from write_side.domain.errors import LedgerError
from write_side.holds import HoldRunner
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

logger = logging.getLogger(__name__)

EXPIRY_INTERVAL_S = 0.25
"""How often the due set is read: a hold expires within about this long after its deadline
(plus the projection's lag for a hold placed moments before its deadline)."""
FAILED_PAUSE_S = 2.0
"""After a failed look (Redis or the store away), the next one waits this long."""
BATCH = 100
"""Due holds taken per look; the loop looks again at once while it finds a full batch."""


async def due_holds(
    redis: Redis, keys: ReadModelKeys, now: float, start: int = 0, limit: int = BATCH
) -> list[str]:
    """Ids of the holds of the live balances generation whose deadline is at or before `now`,
    earliest first, from the `start`-th on."""
    generation = int(await redis.get(keys.live(BALANCES)) or FIRST_GENERATION)
    due = keys.generation(BALANCES, generation).holds_due
    found = await redis.zrangebyscore(due, "-inf", now, start=start, num=limit)
    return cast(list[str], found)


async def expire_due(redis: Redis, keys: ReadModelKeys, runner: HoldRunner) -> int:
    """Expire what is due now; return how many holds this call expired.

    Every due id is tried once per call, a page at a time: the ones already expired or resolved
    stay in the set until the projection drops them, so the next page starts after all of them
    (and a page of such ids cannot hide the due holds behind it)."""
    now, tried, expired = time.time(), 0, 0
    while True:
        due = await due_holds(redis, keys, now, start=tried, limit=BATCH)
        for hold_id in due:
            if await runner.expire(hold_id):
                expired += 1
        tried += len(due)
        if len(due) < BATCH:
            return expired


class ExpiryLoop(threading.Thread):
    """The loop, on its own thread and event loop, with its own engine and Redis client."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="hold-expiry", daemon=True)
        self._settings = settings
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        settings = self._settings
        engine = create_async_store_engine(settings.store.database_url, pool_size=2)
        redis = Redis.from_url(
            settings.redis.url, decode_responses=True, socket_connect_timeout=2, socket_timeout=10
        )
        publisher = RedisNudgePublisher(settings)
        repository = AccountRepository(EventStore(engine), settings.store.snapshot_every)
        deadline_s = settings.store.command_deadline_ms / 1000
        runner = HoldRunner(CommandBus(repository, publisher, deadline_s), repository, publisher)
        keys = ReadModelKeys(settings.redis.prefix)
        try:
            while not self._stopped.is_set():
                pause = EXPIRY_INTERVAL_S
                try:
                    expired = await expire_due(redis, keys, runner)
                    if expired:
                        logger.info("expired %d hold(s)", expired)
                except (RedisError, OSError, sqlalchemy.exc.SQLAlchemyError, LedgerError) as exc:
                    logger.warning(
                        "hold expiry paused (retrying in %.0f s): %s", FAILED_PAUSE_S, exc
                    )
                    pause = FAILED_PAUSE_S  # Redis or the store is away: one line per pause
                await asyncio.sleep(pause)
        finally:
            await publisher.close()
            await redis.aclose()
            await engine.dispose()
