"""Progress of a long admin task: a redrawn bar on a terminal, plain lines in a log."""

from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY_S = 2.0
BAR_WIDTH = 30


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts events towards a position; `advance(n, position)` after each batch."""

    def __init__(self, label: str, start: int, total: int, out: TextIO | None = None) -> None:
        self.label = label
        self.start = start
        self.total = max(total, start)
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.events = 0
        self.position = start
        self._began = time.monotonic()
        self._last_line = 0.0

    def advance(self, events: int, position: int) -> None:
        self.events += events
        self.position = position
        self.total = max(self.total, position)
        now = time.monotonic()
        if self.tty:
            self._draw(now)
        elif now - self._last_line >= PLAIN_EVERY_S:
            self._last_line = now
            print(self._line(now), file=self.out, flush=True)

    def finish(self) -> None:
        now = time.monotonic()
        if self.tty:
            self._draw(now)
            print(file=self.out, flush=True)
        else:
            print(self._line(now), file=self.out, flush=True)

    def _rate(self, now: float) -> float:
        return self.events / max(now - self._began, 1e-6)

    def _line(self, now: float) -> str:
        span = max(self.total - self.start, 1)
        done = self.position - self.start
        rate = self._rate(now)
        eta = (self.total - self.position) / rate if rate > 0 else 0.0
        return (
            f"{self.label}: {self.events:,} events, position {self.position:,}/{self.total:,} "
            f"({100 * done / span:.0f}%), {rate:,.0f} events/s, ETA {_duration(eta)}"
        )

    def _draw(self, now: float) -> None:
        span = max(self.total - self.start, 1)
        filled = int(BAR_WIDTH * (self.position - self.start) / span)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        print(f"\r[{bar}] {self._line(now)}", end="", file=self.out, flush=True)
