"""Pictures of a run, written next to docs/benchmarks.md: every ratio against its target
(bench-ratios.png) and the projection lag's percentiles at each offered rate (bench-lag.png).

Drawn on matplotlib's Agg canvas, without pyplot (files only, no display, no global state). The data comes from the figures
(bench/chart_data.py), so a benchmark that adds a target or a lag rate shows up without a change
here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as Drawing
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import blended_transform_factory

from bench.chart_data import (
    LAG_STATS,
    LagPoint,
    RatioBar,
    lag_points,
    rate_order,
    ratio_bars,
)
from bench.results import Figure

RATIOS_FILE = "bench-ratios.png"
LAG_FILE = "bench-lag.png"
RATIOS_ALT = "Every figure with a target against its target"
LAG_ALT = "Projection lag percentiles at each offered rate"
MET, MISSED, UNJUDGED = "#2e7d32", "#c62828", "#9e9e9e"
LAG_COLOURS = {"p50": "#90caf9", "p99": "#1e88e5", "max": "#0d47a1"}
LABEL_CHARS, CAPTION_CHARS = 36, 32
WIDTH_IN, DPI = 6.0, 100
"""The plot's own width; with the labels and captions beside it an image is ~1,100 px wide, and
its 10-point text stays legible when GitHub scales it to its ~900 px column."""
TICKS = [m * 10.0**e for e in range(-3, 4) for m in (1, 2, 5)]


def _colour(met: bool | None) -> str:
    return {True: MET, False: MISSED, None: UNJUDGED}[met]


def _limits(values: list[float]) -> tuple[float, float]:
    return min(values) / 1.8, max(values) * 1.8


def _wrapped(label: str, width: int = LABEL_CHARS) -> str:
    return textwrap.fill(label, width)


def draw_ratios(bars: list[RatioBar], path: Path, subtitle: str) -> None:
    """One horizontal bar per figure with a target, on a log axis, the target marked; what each
    bar measured and its target are written to its right."""
    fig, ax = _drawing(WIDTH_IN, 1.2 + 0.62 * len(bars))
    low, high = _limits([b.shown for b in bars] + [b.mark for b in bars if b.mark])
    rows = list(range(len(bars)))[::-1]  # first figure on top
    colours = [_colour(b.met) for b in bars]
    ax.barh(rows, [b.shown - low for b in bars], left=low, height=0.62, color=colours)
    beside = blended_transform_factory(ax.transAxes, ax.transData)
    for row, bar, colour in zip(rows, bars, colours, strict=True):
        if bar.mark is not None:
            ax.plot([bar.mark, bar.mark], [row - 0.45, row + 0.45], color="black", linewidth=2.4)
        verdict = {True: "met", False: "missed", None: "not judged"}[bar.met]
        caption = f"{_wrapped(bar.caption, CAPTION_CHARS)}\ntarget {bar.target}: {verdict}"
        ax.text(1.03, row, caption, transform=beside, va="center", fontsize=10, color=colour)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_xticks([t for t in TICKS if low <= t <= high], minor=False)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.7, len(bars) - 0.3)
    ax.set_yticks(rows, [_wrapped(b.label) for b in bars], fontsize=10)
    ax.set_xlabel(
        "ratio measured in the same run (log scale); black mark: the target\n"
        "a target in ms, s, MiB or /s: measured ÷ target (mark at 1)"
    )
    ax.grid(axis="x", which="major", color="#e0e0e0")
    ax.set_axisbelow(True)
    ax.set_title(f"Every figure against its target\n{subtitle}", fontsize=12)
    _save(fig, path)


def _bar_labels(ax: Axes, xs: list[float], values: list[float]) -> None:
    for x, value in zip(xs, values, strict=True):
        ax.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=9)


def _offset(index: int, count: int, width: float) -> float:
    return (index - (count - 1) / 2) * width


def draw_lag(points: list[LagPoint], path: Path, subtitle: str) -> None:
    """Grouped bars: per offered rate, the lag's p50, p99 and max (those measured), in ms; a
    target is a line across its bar."""
    rates = sorted({p.offered for p in points}, key=rate_order)
    stats = [s for s in LAG_STATS if any(p.stat == s for p in points)]
    width = min(0.8 / len(stats), 0.26)
    fig, ax = _drawing(WIDTH_IN * 1.4, 5.0)
    for n, stat in enumerate(stats):
        xs, values = [], []
        for r, rate in enumerate(rates):
            point = next((p for p in points if p.offered == rate and p.stat == stat), None)
            if point is not None:
                xs.append(r + _offset(n, len(stats), width))
                values.append(point.ms)
        ax.bar(xs, values, width=width * 0.92, color=LAG_COLOURS[stat], label=f"lag {stat}")
        _bar_labels(ax, xs, values)
    for point in points:
        if point.target_ms is None:
            continue
        x = rates.index(point.offered) + _offset(stats.index(point.stat), len(stats), width)
        colour = _colour(point.met)
        verdict = {True: "met", False: "missed", None: "not judged"}[point.met]
        where = f" at {point.offered}" if point.offered else ""
        label = f"target {point.stat}{where} ≤ {point.target_ms:,.0f} ms: {verdict}"
        ax.plot([x - width * 0.6, x + width * 0.6], [point.target_ms] * 2, color=colour, lw=2, ls="--",
                label=label)  # fmt: skip
    ax.set_ylim(0, max(p.ms for p in points) * 1.4)
    names = [f"{r} offered" if r else "offered rate not named" for r in rates]
    ax.set_xticks(range(len(rates)), names, fontsize=10)
    ax.set_ylabel("lag (ms)")
    ax.set_title(
        f"Projection lag: a command answered → its min_position readable\n{subtitle}", fontsize=12
    )
    ax.grid(axis="y", color="#e6e6e6")
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=9)
    _save(fig, path)


def _drawing(width_in: float, height_in: float) -> tuple[Drawing, Axes]:
    """A figure on the Agg canvas (files only: no display, no pyplot state)."""
    fig = Drawing(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Drawing, path: Path) -> None:
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.15)


def draw(
    figures: list[Figure], folder: Path, subtitle: str, *, ratios: bool = True, lag: bool = True
) -> list[Path]:
    """Draw the charts there is data for (and that are asked for) into `folder`."""
    charts = []
    bars = ratio_bars(figures)
    if ratios and bars:
        draw_ratios(bars, folder / RATIOS_FILE, subtitle)
        charts.append(folder / RATIOS_FILE)
    points = lag_points(figures)
    if lag and points:
        draw_lag(points, folder / LAG_FILE, subtitle)
        charts.append(folder / LAG_FILE)
    return charts


def for_doc(figures: list[Figure], doc: Path, subtitle: str, *, complete: bool) -> list[str]:
    """Draw the charts next to `doc` and return the markdown that shows them there.

    A run that left benchmarks out (`--only`) redraws only what it has every figure for: the lag
    chart when it ran the lag benchmark, the ratio chart only when it ran them all. A chart it
    did not redraw is kept and still shown, marked as from an earlier run (its title names it).
    """
    folder = doc.parent
    drawn = draw(figures, folder, subtitle, ratios=complete)
    fresh = {path.name for path in drawn}
    lines = []
    for name, alt in ((RATIOS_FILE, RATIOS_ALT), (LAG_FILE, LAG_ALT)):
        if name in fresh:
            lines += [f"![{alt}]({name})", ""]
        elif (folder / name).exists():
            lines += [f"![{alt}, from an earlier run (see its title)]({name})", ""]
    return lines
