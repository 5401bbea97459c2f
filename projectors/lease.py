"""A Redis lock held for the whole life of a rebuild or dry run, renewed in the background.

A run holds its locks through long stretches where no batch would renew them: waiting for the
runner lock, the last catch-up, the key-by-key compare. A lease renews itself every third of its
TTL on its own task; once a renewal finds the lock gone (or cannot reach Redis for a whole TTL)
the lease is lost, and `ensure_held` (which also asks Redis itself) raises. A run's writes do not
rely on noticing that in time: each one checks the lease's `Guard` (key and token) inside its own
transaction, so a run whose lock lapsed cannot write or delete anything more.

The lock itself is the same SET NX PX / compare-and-delete protocol as redis-py's `Lock`, so a
lease and the live runners' `Lock` exclude each other on the same key.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

ACQUIRE_POLL_S = 0.005
"""How often a waiting acquire tries again: short, so a handed-over lock is taken at once."""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaseLost(Exception):
    """The lock a run was holding expired or was taken: the run must stop writing."""


@dataclass(frozen=True, slots=True)
class Guard:
    """What a transaction checks (GET `key` == `token`, under WATCH) before it writes."""

    key: str
    token: str
    watching: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False, repr=False)
    """Held by a transaction while it WATCHes `key`, and by the lease while it renews: a renewal
    (PEXPIRE) touches the key, which would fail that transaction's EXEC for nothing and make it
    redo its work (with large rebuild batches, every third one or so)."""


class Lease:
    """One holder of the lock at `key`, kept alive in the background until `release`."""

    def __init__(self, redis: Redis, key: str, ttl_s: float) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl_s * 1000)
        self.guard = Guard(key, uuid.uuid4().hex)
        self._renewal: asyncio.Task[None] | None = None
        self._lost: str | None = None

    @property
    def key(self) -> str:
        return self.guard.key

    @property
    def lost(self) -> bool:
        return self._lost is not None

    async def acquire(self, *, wait_s: float = 0.0) -> bool:
        """Take the lock, trying for up to `wait_s`; True once held (and renewing)."""
        deadline = time.monotonic() + wait_s
        while not await self._redis.set(self.key, self.guard.token, nx=True, px=self._ttl_ms):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(ACQUIRE_POLL_S)
        self._renewal = asyncio.create_task(self._renew(), name=f"lease {self.key}")
        return True

    async def ensure_held(self) -> None:
        """Raise LeaseLost unless the lock still holds our token, asking Redis, not the renewal
        task (which may not have noticed yet): for steps that write nothing themselves."""
        if self._lost is None and await self._redis.get(self.key) != self.guard.token:
            self._lose("the lock expired or was taken by another run")
        if self._lost is not None:
            raise LeaseLost(f"{self.key}: {self._lost}")

    async def release(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        if self._lost is not None:
            return
        try:
            if not await self._redis.eval(_RELEASE, 1, self.key, self.guard.token):
                logger.warning("lock %s had expired before it was released", self.key)
        except (RedisError, OSError) as exc:
            logger.warning("could not release %s (it expires on its own): %s", self.key, exc)

    async def _renew(self) -> None:
        renewed_at = time.monotonic()
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                async with self.guard.watching:
                    renewed = await self._redis.eval(
                        _RENEW, 1, self.key, self.guard.token, self._ttl_ms
                    )
                if not renewed:
                    self._lose("the lock expired or was taken by another run")
                    return
                renewed_at = time.monotonic()
            except (RedisError, OSError) as exc:
                if time.monotonic() - renewed_at >= self._ttl_ms / 1000:
                    self._lose(f"could not renew the lock for a whole TTL ({exc})")
                    return

    def _lose(self, why: str) -> None:
        self._lost = why
        logger.warning("lost %s: %s", self.key, why)
