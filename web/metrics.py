"""Prometheus metrics of the HTTP edge and the `/metrics` exposition both APIs serve.

Served processes run prometheus_client in multiprocess mode: `bank write-api` and `bank query-api`
point `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before their workers start (app/serving.py), each
worker writes its samples there, and a scrape of any worker adds up all of them. Without the
variable (an app built in-process) the default registry of the one process is exported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from litestar import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "bank_http_requests",
    "HTTP requests answered, by API, route template, method and status.",
    ["api", "route", "method", "status"],
)
LATENCY = Histogram(
    "bank_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response.",
    ["api", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


PROMETHEUS_TEXT = "text/plain"
"""The media type /metrics declares (the answer's header adds Prometheus' version parameter)."""


def exposition(extra: Iterable[Collector] = ()) -> Response[bytes]:
    """The metrics of every process of this server (multiprocess mode) plus `extra` families."""
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Everything())
    for collector in extra:
        registry.register(collector)
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Everything(Collector):
    """The process's default registry, seen through a registry that also holds `extra`."""

    def collect(self):  # type: ignore[no-untyped-def]
        return REGISTRY.collect()
