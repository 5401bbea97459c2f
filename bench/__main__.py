"""`python -m bench [--quick] [--only NAME ...] [--workers N] [--profile] [--no-write]`.

Runs the benchmarks (each in its own database and Redis prefix), prints the table and writes it,
with the machine's description, between the markers of docs/benchmarks.md; draws its charts next
to that file (bench/charts.py) and shows them there.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.charts import for_doc as charts_for_doc
from bench.config import BenchConfig
from bench.environment import bench_environment
from bench.machine import describe
from bench.report import PROFILES, RESULTS, write_section
from bench.results import Figure, Outcome, table
from bench.suite import BENCHMARKS, BY_NAME, Benchmark

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs: under two minutes")
    parser.add_argument("--only", action="append", choices=sorted(BY_NAME), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BY_NAME)}")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="API worker processes (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the code under test with py-spy; writes the profile section only")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only; leave the docs alone")
    parser.add_argument("--output", type=Path, default=DOC, help=f"default: {DOC}")
    return parser.parse_args(argv)


def _results_body(
    config: BenchConfig, figures: list[Figure], notes: list[str], took: float, charts: list[str]
) -> str:
    mode = "quick" if config.quick else "full"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run: `python -m bench{' --quick' if config.quick else ''}` ({mode}, API workers: "
        f"{config.workers}) on {when}, {took:.0f} s.",
        "",
        f"Machine: {describe()}.",
        "",
        table(figures),
        "",
        *charts,
        "Notes from the run:",
        "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(lines)


def _charts(
    args: argparse.Namespace, config: BenchConfig, figures: list[Figure], chosen: list[Benchmark]
) -> list[str]:
    """Draw the run's charts next to the doc; the markdown lines that show them."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    only = "".join(f" --only {b.name}" for b in chosen) if args.only else ""
    subtitle = f"python -m bench{' --quick' if config.quick else ''}{only}, {when}"
    complete = {b.name for b in chosen} == set(BY_NAME)
    return charts_for_doc(figures, args.output, subtitle, complete=complete)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    config = BenchConfig(quick=args.quick, workers=args.workers, profile=args.profile)
    chosen = [BY_NAME[name] for name in args.only] if args.only else list(BENCHMARKS)
    started = time.perf_counter()
    total = Outcome()
    for benchmark in chosen:
        print(f"== {benchmark.title}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        with bench_environment() as env:
            outcome = benchmark.run(env, config)
        print(f"   done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        total.figures += outcome.figures
        total.notes += outcome.notes
        total.profiles += outcome.profiles
    took = time.perf_counter() - started
    if config.profile:
        body = "\n".join(total.profiles)
        print(body)
        if not args.no_write:
            write_section(args.output, PROFILES, body)
        return 0
    charts = [] if args.no_write else _charts(args, config, total.figures, chosen)
    body = _results_body(config, total.figures, total.notes, took, charts)
    print(body)
    if not args.no_write:
        write_section(args.output, RESULTS, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
