"""The fields of the workers' metrics hash (`ReadModelKeys.worker_metrics`): the contract between
the projectors that count (`projectors/metrics.py`) and the query API that exports
(`read_side/metrics.py`)."""

from __future__ import annotations

import math
from typing import Final

BATCH_SECONDS_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf)
"""Upper bounds of the batch-duration histogram, in seconds (the last one catches the rest)."""


def events_projected_field(projection: str) -> str:
    return f"events:{projection}"


def batch_sum_field(projection: str) -> str:
    return f"batch_seconds_sum:{projection}"


def batch_bucket_field(projection: str, bound: float) -> str:
    return f"batch_seconds_bucket:{projection}:{bound_label(bound)}"


def catch_up_runs_field() -> str:
    return "catch_up_runs"


def bound_label(bound: float) -> str:
    """Prometheus's spelling of a bucket bound (`le`): `0.005`, `+Inf`."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))
