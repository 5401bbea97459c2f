"""What the charts show, read from a run's figures: each figure with a target as a bar against its
target, and the projection-lag percentiles at each offered rate. No drawing here (bench/charts.py).

Targets are written for people ("≥ 0.5", "≤ 1.5x", "≥ 5 x the peer", "≤ 25 ms", "< 300 MiB",
"no fall, no failed answer"). A bare number (or one followed by "x") is a target for the figure's
ratio; a number with a unit is a target for its value, shown as measured ÷ target so that every
bar shares one axis. Both directions occur: "≥" is met above the mark, "≤" below it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.results import Figure

_TARGET = re.compile(r"^\s*(?P<op>≥|≤|>=|<=|<|>)\s*(?P<number>[\d,]*\.?\d+)\s*(?P<rest>.*)$")
_LAG = re.compile(r"^lag (?P<stat>p50|p99|max)\b", re.IGNORECASE)
_OFFERED = re.compile(r"(?P<rate>[\d,]+)\s*/s offered|offered (?P<rate2>[\d,]+)\s*/s")
LAG_STATS = ("p50", "p99", "max")


@dataclass(frozen=True, slots=True)
class Target:
    at_least: bool
    """True for "≥"/">" (met at or above the mark), False for "≤"/"<"."""
    number: float
    unit: str
    """Empty for a ratio target; else the unit of a value target ("ms", "s", "MiB", "/s")."""

    @property
    def on_ratio(self) -> bool:
        return not self.unit


def parse_target(text: str) -> Target | None:
    """The numeric target in `text`, or None when it has none ("no fall, no failed answer")."""
    match = _TARGET.match(text)
    if match is None:
        return None
    rest = match["rest"].strip()
    unit = "" if rest == "" or rest.startswith("x") else rest
    return Target(match["op"] in ("≥", ">=", ">"), float(match["number"].replace(",", "")), unit)


@dataclass(frozen=True, slots=True)
class RatioBar:
    """One bar of the ratio chart: `shown` on the axis, the target's mark at `mark`."""

    label: str
    shown: float
    mark: float | None
    """None for a target that is not a number: the bar then carries only its colour."""
    met: bool | None
    caption: str
    """What was measured, in words ("0.24 of granian ceiling", "69.1 ms = 2.76x target")."""
    target: str
    """The target as the figure writes it."""


def _number(title: str) -> str:
    head, dot, _ = title.partition(". ")
    return head if dot and head.isdigit() else title


def _amount(value: float, unit: str) -> str:
    number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{number} {unit}".strip()


def ratio_bar(figure: Figure) -> RatioBar | None:
    """The bar of a figure that has a target, or None (no target, or nothing to draw)."""
    if not figure.target:
        return None
    target = parse_target(figure.target)
    label = f"{_number(figure.benchmark)}. {figure.measure}"
    if target is not None and not target.on_ratio:
        if target.number <= 0:
            return None
        shown = figure.value / target.number
        caption = f"{_amount(figure.value, figure.unit)} = {shown:.2f}x target"
        return RatioBar(label, shown, 1.0, figure.met, caption, figure.target)
    if figure.ratio is None or figure.ratio <= 0:
        return None
    versus = f" of {figure.versus}" if figure.versus else ""
    caption = f"{figure.ratio:.2f}{versus}"
    mark = target.number if target is not None else None
    return RatioBar(label, figure.ratio, mark, figure.met, caption, figure.target)


def ratio_bars(figures: list[Figure]) -> list[RatioBar]:
    return [bar for bar in map(ratio_bar, figures) if bar is not None]


@dataclass(frozen=True, slots=True)
class LagPoint:
    offered: str
    """The offered rate as the figures name it ("300/s"), or "" when no figure names one."""
    stat: str
    """p50, p99 or max."""
    ms: float
    target_ms: float | None
    met: bool | None


def _offered(text: str) -> str:
    match = _OFFERED.search(text)
    if match is None:
        return ""
    return f"{match['rate'] or match['rate2']}/s"


def _in_ms(value: float, unit: str) -> float | None:
    return {"ms": value, "s": value * 1000}.get(unit.strip())


def lag_points(figures: list[Figure]) -> list[LagPoint]:
    """Every "lag p50/p99/max ..." figure in ms, with the offered rate it was measured at: named
    in the figure ("lag p99 at 1,000/s offered"), else the one rate its benchmark names elsewhere
    ("commands/s achieved (offered 1,000/s)") when it names only one."""
    rates_by_benchmark: dict[str, set[str]] = {}
    for figure in figures:
        rate = _offered(figure.measure)
        if rate:
            rates_by_benchmark.setdefault(figure.benchmark, set()).add(rate)
    points = []
    for figure in figures:
        match = _LAG.match(figure.measure)
        ms = _in_ms(figure.value, figure.unit)
        if match is None or ms is None:
            continue
        offered = _offered(figure.measure)
        if not offered:
            rates = rates_by_benchmark.get(figure.benchmark, set())
            offered = next(iter(rates)) if len(rates) == 1 else ""
        target = parse_target(figure.target) if figure.target else None
        target_ms = _in_ms(target.number, target.unit) if target and not target.on_ratio else None
        points.append(LagPoint(offered, match["stat"].lower(), ms, target_ms, figure.met))
    return points


def rate_order(offered: str) -> float:
    """Sort key of an offered rate ("1,000/s" after "300/s"; unnamed last)."""
    digits = offered.removesuffix("/s").replace(",", "")
    return float(digits) if digits.isdigit() else float("inf")
