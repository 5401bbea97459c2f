"""The benchmark suite still runs: each benchmark once at smoke size, with no timing asserted.

Figures are noisy by nature (the machine is shared), so these tests check only that every benchmark
produces its figures, that every ratio is a positive number, and that it cleans up after itself.
The full suite is `python -m bench` (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import psycopg
import pytest
import redis

from bench.config import PG_ADMIN_URL, REDIS_URL, BenchConfig
from bench.environment import bench_environment
from bench.report import RESULTS, replace_section
from bench.results import Figure, table
from bench.suite import BENCHMARKS, Benchmark

pytestmark = pytest.mark.postgres

SMOKE = BenchConfig(smoke=True)
NEEDS_WRK = {"write_http", "query_http", "hot_account", "embedded", "transfers_http", "peer"}


def _database_exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _keys_with(fragment: str) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(match=f"*{fragment}*", count=1000))
    finally:
        client.close()


@pytest.mark.parametrize("benchmark", BENCHMARKS, ids=[b.name for b in BENCHMARKS])
def test_each_benchmark_reports_positive_ratios_and_cleans_up(benchmark: Benchmark) -> None:
    if benchmark.name in NEEDS_WRK and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (make bench installs it)")
    with bench_environment() as env:
        outcome = benchmark.run(env, SMOKE)
    assert outcome.figures, "a benchmark must report figures"
    for figure in outcome.figures:
        assert figure.value > 0, figure
        assert math.isfinite(figure.value), figure
        if figure.ratio is not None:
            assert figure.ratio > 0, figure
            assert math.isfinite(figure.ratio), figure
    assert any(figure.target for figure in outcome.figures), "every benchmark has a target"
    assert not _database_exists(env.database)
    assert _keys_with(env.prefix) == []


def test_a_run_rewrites_only_its_section_of_the_doc() -> None:
    figure = Figure("b", "m", 1234.0, "req/s", 0.5, "ceiling", "≥ 0.5", True)
    doc = f"# Benchmarks\n\nprose before\n\n{RESULTS[0]}\nold\n{RESULTS[1]}\n\nanalysis after\n"
    updated = replace_section(doc, RESULTS, table([figure]))
    assert "old" not in updated
    assert "prose before" in updated
    assert "analysis after" in updated
    assert "| b | m | 1,234 req/s | 0.50 | ceiling | ≥ 0.5 | met |" in updated


def test_the_paired_comparison_of_sealed_openings_runs_and_reports_its_ratio() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.sealed_openings", "--sqlite", "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "sqlite: time per opening sealed / in clear: median" in run.stdout
    assert "sqlite: CPU of this process per opening" in run.stdout
