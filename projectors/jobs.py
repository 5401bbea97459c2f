"""The RQ entry points: plain module-level functions with JSON-serialisable arguments.

A job carries only the key prefix it was meant for; the database URL (and its password) stays in
the worker's environment instead of in Redis. The job opens its engine and Redis client itself, on
its own event loop, and closes them before it returns: nothing is shared across jobs or forks.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from kernel.settings import Settings

JOB_TIMEOUT_S = 300
RESULT_TTL_S = 60
FAILURE_TTL_S = 7 * 24 * 3600


class MisroutedJob(RuntimeError):
    """A job for one key prefix reached a worker configured for another."""


_worker_settings: Settings | None = None
"""The settings of the worker process running the jobs (RQ passes jobs JSON arguments only)."""


def use_settings(settings: Settings) -> None:
    """Called once by the worker process: its jobs use these instead of reading the environment."""
    global _worker_settings
    _worker_settings = settings


def catch_up(prefix: str) -> dict[str, int]:
    """Catch every projection up with the store; returns how many events each one passed."""
    from projectors.catch_up import run_catch_up  # keeps the enqueueing side free of SQLAlchemy

    settings = _worker_settings or Settings.from_env()  # a forking worker's child: read it once
    if settings.redis.prefix != prefix:
        raise MisroutedJob(
            f"job for prefix {prefix!r} reached a worker for {settings.redis.prefix!r}; "
            "check REDIS_PREFIX and RQ_QUEUE"
        )
    return asyncio.run(run_catch_up(settings))


def job_id(settings: Settings, kind: str) -> str:
    """A unique RQ job id that contains the key prefix (RQ allows letters, digits, - and _)."""
    safe_prefix = re.sub(r"[^A-Za-z0-9_-]", "_", settings.redis.prefix)
    return f"{safe_prefix}-{kind}-{uuid.uuid4().hex}"


def projection_queue(connection: redis.Redis, settings: Settings) -> Queue:
    return Queue(settings.redis.queue, connection=connection, serializer=JSONSerializer)


def enqueue_catch_up(connection: redis.Redis, settings: Settings, *, reason: str) -> str:
    """Queue one catch-up job (synchronous, like all of RQ); returns its id."""
    job = projection_queue(connection, settings).enqueue(
        catch_up,
        settings.redis.prefix,
        job_id=job_id(settings, "catch-up"),
        job_timeout=JOB_TIMEOUT_S,
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
        description=f"catch up the projections ({reason})",
    )
    return str(job.id)
