"""The benchmarks, in the order they run, by the name `--only` takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import (
    aggregate_load,
    append,
    embedded,
    hold_expiry,
    hot_account,
    lag,
    peer,
    personal_data,
    query_http,
    rebuild,
    transfers_http,
    write_http,
)
from bench.config import BenchConfig
from bench.environment import BenchEnv
from bench.results import Outcome


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    title: str
    run: Callable[[BenchEnv, BenchConfig], Outcome]


BENCHMARKS = tuple(
    Benchmark(module.NAME, module.TITLE, module.run)
    for module in (
        write_http,
        append,
        aggregate_load,
        rebuild,
        lag,
        query_http,
        peer,
        personal_data,
        hot_account,
        hold_expiry,
        embedded,
        transfers_http,
    )
)
BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}
