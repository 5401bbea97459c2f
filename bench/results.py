"""What a benchmark reports: figures, each a value with its ratio to a ceiling or peer and a target."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Figure:
    benchmark: str
    measure: str
    value: float
    unit: str
    ratio: float | None = None
    versus: str = ""
    """What the ratio is taken against (a ceiling or a peer measured in the same run)."""
    target: str = ""
    met: bool | None = None


@dataclass(slots=True)
class Outcome:
    """Everything one benchmark produced: its figures and notes (fill speeds, sizes, caveats)."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    """Markdown blocks written by a --profile run: where the time goes."""


def _value(figure: Figure) -> str:
    if figure.value >= 100:
        return f"{figure.value:,.0f} {figure.unit}"
    return f"{figure.value:,.2f} {figure.unit}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


def table(figures: list[Figure]) -> str:
    lines = [
        "| benchmark | measure | value | ratio | against | target | |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        lines.append(
            f"| {f.benchmark} | {f.measure} | {_value(f)} | {ratio} | {f.versus} | {f.target} "
            f"| {_met(f.met)} |"
        )
    return "\n".join(lines)
