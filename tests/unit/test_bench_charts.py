"""The benchmark run's charts: drawn from a fixed results list, written as PNGs next to the doc,
shown in it, and kept when a partial run cannot redraw them. No timing is involved."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from bench.chart_data import Target, lag_points, parse_target, ratio_bars
from bench.charts import LAG_FILE, RATIOS_FILE, for_doc
from bench.results import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FIGURES = [
    Figure("1. write throughput over HTTP", "ceiling: minimal app", 13051, "req/s"),
    Figure("1. write throughput over HTTP", "deposits/s (2xx)", 3127, "cmd/s", 0.24,
           "granian ceiling", "≥ 0.5", False),
    Figure("1. write throughput over HTTP", "p99 latency", 69.11, "ms", 5.33, "granian ceiling",
           "≤ 25 ms", False),
    Figure("3. aggregate load", "worst case", 0.73, "ms", 1.36, "10-event load", "≤ 1.5", True),
    Figure("4. projection rebuild", "rebuild --all", 60000, "events/s", 0.7, "Redis ceiling",
           "≥ 50,000/s", True),
    Figure("7. peer", "ours: CommandBus", 1197, "cmd/s", 2.92, "eventsourcing",
           "≥ 5 x the peer", False),
    Figure("9. one busy account", "64 vs 4 connections", 1115, "cmd/s", 2.83, "4 connections",
           "no fall, no failed answer", True),
    Figure("5. projection lag", "lag p50 at 300/s offered", 25, "ms"),
    Figure("5. projection lag", "lag p99 at 300/s offered", 40, "ms", None, "", "≤ 50 ms", True),
    Figure("5. projection lag", "lag max at 300/s offered", 0.42, "s"),
    Figure("5. projection lag", "lag p50 at 1,000/s offered", 153, "ms"),
    Figure("5. projection lag", "lag p99 at 1,000/s offered", 554, "ms", None, "", "≤ 100 ms",
           False),
]  # fmt: skip


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_targets_of_both_directions_and_with_units_are_read() -> None:
    assert parse_target("≥ 0.5") == parse_target("≥ 0.5x")
    assert parse_target("≥ 5 x the peer") == Target(at_least=True, number=5.0, unit="")
    assert parse_target("≤ 25 ms") == Target(at_least=False, number=25.0, unit="ms")
    assert parse_target("≥ 50,000/s") == Target(at_least=True, number=50_000.0, unit="/s")
    assert parse_target("< 300 MiB") == Target(at_least=False, number=300.0, unit="MiB")
    assert parse_target("no fall, no failed answer") is None


def test_every_figure_with_a_target_gets_a_bar_against_its_target() -> None:
    bars = {bar.label: bar for bar in ratio_bars(FIGURES)}
    assert set(bars) == {
        "1. deposits/s (2xx)",
        "1. p99 latency",
        "3. worst case",
        "4. rebuild --all",
        "7. ours: CommandBus",
        "9. 64 vs 4 connections",
        "5. lag p99 at 300/s offered",
        "5. lag p99 at 1,000/s offered",
    }
    assert (bars["1. deposits/s (2xx)"].shown, bars["1. deposits/s (2xx)"].mark) == (0.24, 0.5)
    # a value target is drawn as measured / target against a mark at 1, whatever its direction
    assert bars["1. p99 latency"].shown == pytest.approx(69.11 / 25)
    assert bars["1. p99 latency"].mark == 1.0
    assert bars["4. rebuild --all"].shown == pytest.approx(1.2)
    assert bars["7. ours: CommandBus"].mark == 5.0
    assert bars["9. 64 vs 4 connections"].mark is None
    assert [bar.met for bar in bars.values()] == [
        False,
        False,
        True,
        True,
        False,
        True,
        True,
        False,
    ]


def test_lag_percentiles_are_picked_per_offered_rate_in_ms() -> None:
    points = {(p.offered, p.stat): p for p in lag_points(FIGURES)}
    assert set(points) == {
        ("300/s", "p50"), ("300/s", "p99"), ("300/s", "max"), ("1,000/s", "p50"), ("1,000/s", "p99")
    }  # fmt: skip
    assert points["300/s", "max"].ms == pytest.approx(420)
    assert points["1,000/s", "p99"].target_ms == 100
    assert points["1,000/s", "p99"].met is False


def test_one_unnamed_rate_is_taken_from_the_benchmarks_other_figures() -> None:
    today = [
        Figure("5. projection lag", "commands/s achieved (offered 1,000/s)", 890, "cmd/s", 0.89),
        Figure("5. projection lag", "lag p50 (response → min_position readable)", 153, "ms"),
        Figure("5. projection lag", "lag p99", 554, "ms", 641.7, "idle", "≤ 100 ms", False),
    ]
    assert [(p.offered, p.stat) for p in lag_points(today)] == [("1,000/s", "p50"), ("1,000/s", "p99")]  # fmt: skip


def test_a_full_run_writes_both_charts_next_to_the_doc_and_links_them(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    lines = for_doc(FIGURES, doc, "python -m bench, test", complete=True)
    for name in (RATIOS_FILE, LAG_FILE):
        width, height = _png_size(tmp_path / name)
        assert 600 <= width <= 1400, (name, width)  # legible in GitHub's column
        assert height > 300
        assert any(line.startswith("![") and line.endswith(f"]({name})") for line in lines)
    assert not any("earlier run" in line for line in lines)


def test_a_partial_run_keeps_the_charts_it_cannot_redraw(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    for_doc(FIGURES, doc, "full run", complete=True)
    ratios_before = (tmp_path / RATIOS_FILE).read_bytes()
    lag_before = (tmp_path / LAG_FILE).read_bytes()
    write_only = [f for f in FIGURES if f.benchmark.startswith("1.")]
    lines = for_doc(write_only, doc, "python -m bench --only write_http", complete=False)
    assert (tmp_path / RATIOS_FILE).read_bytes() == ratios_before
    assert (tmp_path / LAG_FILE).read_bytes() == lag_before
    assert sum("from an earlier run" in line for line in lines) == 2
    lag_only = [f for f in FIGURES if f.benchmark.startswith("5.")][:3]
    lines = for_doc(lag_only, doc, "python -m bench --only lag", complete=False)
    assert (tmp_path / LAG_FILE).read_bytes() != lag_before
    assert f"]({LAG_FILE})" in next(line for line in lines if LAG_FILE in line)
    assert "earlier run" not in next(line for line in lines if LAG_FILE in line)
