"""The query API's own figures: stream subscribers, where each projection stands, and the workers'
figures they keep in Redis (`projectors/metrics.py`), as Prometheus families.

The projection and worker figures are read from Redis when `/metrics` is scraped (they belong to
no process), so every query-API process reports the same values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client import Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kernel.read_model_layout import PROJECTION_NAMES
from kernel.worker_metrics import (
    BATCH_SECONDS_BUCKETS,
    batch_bucket_field,
    batch_sum_field,
    bound_label,
    catch_up_runs_field,
    events_projected_field,
)
from read_side.views import ProjectionStatus

STREAM_SUBSCRIBERS = Gauge(
    "bank_stream_subscribers",
    "Clients connected to GET /stream.",
    multiprocess_mode="livesum",
)


class ScrapedFamilies(Collector):
    """Families computed for one scrape (from Redis), handed to the registry as they are."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def projection_families(statuses: Iterable[ProjectionStatus]) -> list[Metric]:
    gauges = {
        "checkpoint": GaugeMetricFamily(
            "bank_projection_checkpoint", "Last store position applied.", labels=["projection"]
        ),
        "head": GaugeMetricFamily(
            "bank_projection_head", "Store head position announced to Redis.", labels=["projection"]
        ),
        "lag": GaugeMetricFamily(
            "bank_projection_lag", "Events between checkpoint and head.", labels=["projection"]
        ),
    }
    for status in statuses:
        gauges["checkpoint"].add_metric([status.name], status.checkpoint)
        gauges["head"].add_metric([status.name], status.head)
        gauges["lag"].add_metric([status.name], status.lag)
    return list(gauges.values())


def worker_families(stored: Mapping[str, str]) -> list[Metric]:
    events = CounterMetricFamily(
        "bank_worker_events_projected", "Events applied by the workers.", labels=["projection"]
    )
    runs = CounterMetricFamily("bank_worker_catch_up_runs", "Catch-up jobs the workers ran.")
    runs.add_metric([], float(stored.get(catch_up_runs_field(), 0)))
    durations = HistogramMetricFamily(
        "bank_worker_batch_duration_seconds",
        "Time to read, fold and write one batch.",
        labels=["projection"],
    )
    for name in PROJECTION_NAMES:
        events.add_metric([name], float(stored.get(events_projected_field(name), 0)))
        cumulative, buckets = 0.0, []
        for bound in BATCH_SECONDS_BUCKETS:
            cumulative += float(stored.get(batch_bucket_field(name, bound), 0))
            buckets.append((bound_label(bound), cumulative))
        durations.add_metric([name], buckets, float(stored.get(batch_sum_field(name), 0)))
    return [events, runs, durations]
