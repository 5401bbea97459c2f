"""How a run is configured: quick or full, worker count, profiling, and where the services are."""

from __future__ import annotations

import os
from dataclasses import dataclass

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    quick: bool = False
    """Shorter loads and smaller data: the whole suite in under two minutes."""
    workers: int = 1
    """Worker processes of the APIs under test (`bank write-api --workers N`), and of their peer."""
    profile: bool = False
    """Attach a profiler to the code under test; the figures are then distorted and not reported."""
    smoke: bool = False
    """Tiny sizes, for the test that keeps this code from rotting: seconds, not minutes."""

    def seconds(self, full: float, quick: float, smoke: float = 0.5) -> float:
        if self.smoke:
            return smoke
        return quick if self.quick else full

    def count(self, full: int, quick: int, smoke: int) -> int:
        if self.smoke:
            return smoke
        return quick if self.quick else full
