"""The `bank worker` process: an RQ worker for catch-up jobs plus a periodic safety sweep.

We run `rq.SimpleWorker` (jobs in the worker process) rather than the forking `Worker`: a catch-up
job already opens and closes its own engine and clients on its own event loop, so a fork per job
would buy no isolation, only its cost on every nudge; and a crash mid-job is harmless by design
(the batch transaction and checkpoint make a replay a no-op). A worker killed outright is simply
restarted; its runner lock expires within `LOCK_TTL_S`. RQ's own loop ends when Redis goes away
mid-job; `bank worker` then waits for Redis and starts a new loop, so only a signal stops it.

The sweep is a thread that enqueues a catch-up every `sweep_interval_s` when the queue is empty, so
projections catch up within seconds even when every nudge was lost (Redis down during commits).
It also rewrites the Redis mirror of the API keys from SQL: Redis keeps nothing on disk here, and
the query API checks tokens against that mirror only; and it deletes the idempotency records older
than `IDEMPOTENCY_RETENTION` (lookups already ignore them; this keeps the table small).

A second thread expires pending holds whose deadline has passed (projectors/hold_expiry.py), so
holds expire wherever a worker runs (`bank up` starts one); `--burst` does not expire holds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import threading
from types import FrameType

import redis
import sqlalchemy as sa
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from auth.mirror import mirror_api_keys
from kernel.settings import Settings
from projectors.catch_up import run_catch_up
from projectors.hold_expiry import ExpiryLoop
from projectors.jobs import enqueue_catch_up, projection_queue, use_settings
from write_side.store.database import create_sync_store_engine
from write_side.store.retention import purge_expired_commands

logger = logging.getLogger(__name__)

REDIS_RETRY_S = 0.5
MAX_REDIS_RETRY_S = 5.0


def worker_name(settings: Settings) -> str:
    return f"{settings.redis.prefix}-worker-{socket.gethostname()}-{os.getpid()}"


def _connect(settings: Settings) -> redis.Redis:
    # RQ needs a client that returns bytes (no decode_responses).
    return redis.Redis.from_url(
        settings.redis.url, socket_connect_timeout=2, health_check_interval=30
    )


class Sweeper(threading.Thread):
    """Enqueues a catch-up at start and then every `sweep_interval_s` while the queue is empty;
    refreshes the API-key mirror and purges expired idempotency records on the same beat."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="projection-sweeper", daemon=True)
        self._settings = settings
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        connection = _connect(self._settings)
        engine = create_sync_store_engine(self._settings.store.database_url)
        try:
            while True:
                self.sweep(connection, engine)
                if self._stopped.wait(self._settings.worker.sweep_interval_s):
                    return
        finally:
            engine.dispose()
            connection.close()

    def sweep(self, connection: redis.Redis, engine: sa.Engine) -> None:
        try:
            if projection_queue(connection, self._settings).count == 0:
                enqueue_catch_up(connection, self._settings, reason="sweep")
        except (RedisError, OSError) as exc:
            logger.warning("projection sweep skipped: %s", exc)
        try:
            mirror_api_keys(self._settings, engine=engine, client=connection)
        except (RedisError, OSError, sa.exc.SQLAlchemyError) as exc:
            logger.warning("API key mirror not refreshed: %s", exc)
        try:
            purge_expired_commands(engine, self._settings.store.idempotency_retention)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            logger.warning("expired idempotency records not purged: %s", exc)


class ProjectionWorker(SimpleWorker):
    """Remembers whether a signal asked it to stop: RQ's loop also just returns (or raises) when
    Redis goes away mid-job, and that must not end the process."""

    stop_signalled = False

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # rq is untyped


def _wait_for_redis(connection: redis.Redis) -> bool:
    """Poll Redis until it answers (True) or SIGTERM/SIGINT arrives meanwhile (False)."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    delay = REDIS_RETRY_S
    while not stopping.wait(delay):
        try:
            connection.ping()
            return True
        except (RedisError, OSError):
            delay = min(2 * delay, MAX_REDIS_RETRY_S)
    return False


def _work_until_stopped(settings: Settings, connection: redis.Redis) -> None:
    """Run RQ workers one after another until a signal stops one; Redis going away does not.

    Each incarnation has its own name: a dead one may still be registered in Redis.
    """
    for incarnation in itertools.count(1):
        worker = ProjectionWorker(
            [projection_queue(connection, settings)],
            connection=connection,
            serializer=JSONSerializer,
            name=f"{worker_name(settings)}-{incarnation}",
        )
        try:
            worker.work(logging_level="WARNING")  # a line per job every sweep would drown the log
        except (RedisError, OSError) as exc:
            logger.warning("the projection worker lost Redis: %s", exc)
        if worker.stop_signalled:
            return
        logger.warning("the projection worker stopped unasked; it resumes when Redis answers")
        if not _wait_for_redis(connection):
            return


def run_worker(settings: Settings, *, burst: bool) -> None:
    """Work the projection queue. With `burst`, drain it, catch every projection up, then return."""
    use_settings(settings)
    connection = _connect(settings)
    connection.ping()  # fail fast, with the CLI's clear message, when Redis is unreachable
    if burst:
        worker = SimpleWorker(
            [projection_queue(connection, settings)],
            connection=connection,
            serializer=JSONSerializer,
            name=worker_name(settings),
        )
        worker.work(burst=True, logging_level="WARNING")
        asyncio.run(run_catch_up(settings, wait_for_locks=True))
        return
    sweeper = Sweeper(settings)
    sweeper.start()
    expiry = ExpiryLoop(settings)
    expiry.start()
    try:
        _work_until_stopped(settings, connection)
    finally:
        expiry.stop()
        sweeper.stop()
        connection.close()
