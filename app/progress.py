"""Progress of a long admin task: click's bar on a terminal, and a summary line either way."""

from __future__ import annotations

import sys
import time
from types import TracebackType

import click


class Progress:
    """Counts events towards a position; `advance(n, position)` after each batch. A context
    manager: the bar is drawn while it is open (click draws nothing when stderr is not a
    terminal), and a summary line with the rate is printed when it closes without an error."""

    def __init__(self, label: str, total: int) -> None:
        self._label = label
        self._bar = click.progressbar(
            length=max(total, 1), label=label, file=sys.stderr, show_pos=True, show_eta=True
        )
        self._events = 0
        self._began = time.monotonic()

    def __enter__(self) -> Progress:
        self._bar.__enter__()
        return self

    def advance(self, events: int, position: int) -> None:
        self._events += events
        self._bar.update(max(position - self._bar.pos, 0))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._bar.__exit__(kind, error, trace)
        if error is not None:
            return  # the error's own line says what happened
        seconds = max(time.monotonic() - self._began, 1e-6)
        click.echo(
            f"{self._label}: {self._events:,} events in {seconds:.1f} s "
            f"({self._events / seconds:,.0f} events/s)",
            err=True,
        )
