"""The projection workers' own figures, kept in Redis so the query API's `/metrics` exports them.

Workers are RQ processes without an HTTP port, and there may be several: each batch adds its
counts and its duration's histogram bucket to one Redis hash (`ReadModelKeys.worker_metrics`) in
the batch's own MULTI/EXEC, so the totals are exact across workers and counted once per applied
batch. The query API turns the hash into Prometheus families (`read_side/metrics.py`).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kernel.worker_metrics import (
    BATCH_SECONDS_BUCKETS,
    batch_bucket_field,
    batch_sum_field,
    catch_up_runs_field,
    events_projected_field,
)


def stage_batch(tx: Pipeline, key: str, projection: str, events: int, seconds: float) -> None:
    """Count one applied batch of `events` that took `seconds` (read + fold + write)."""
    tx.hincrby(key, events_projected_field(projection), events)
    tx.hincrbyfloat(key, batch_sum_field(projection), seconds)
    for bound in BATCH_SECONDS_BUCKETS:
        if seconds <= bound:
            tx.hincrby(key, batch_bucket_field(projection, bound), 1)
            break  # buckets are stored non-cumulative; the exporter adds them up


async def count_catch_up_run(redis: Redis, key: str) -> None:
    await redis.hincrby(key, catch_up_runs_field(), 1)
