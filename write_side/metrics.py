"""The write side's figures: commands by type and outcome, and how many appends share a flush."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from web.observer import Finished

COMMANDS = Counter(
    "bank_commands",
    "Commands answered, by command (route handler) and outcome (ok or the error code).",
    ["command", "outcome"],
)
APPEND_BATCH_SIZE = Histogram(
    "bank_append_batch_size",
    "Appends committed together in one store transaction (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


def count_command(request: Finished) -> None:
    """A POST with a handler is a command; its outcome is `ok` or the error code it answered."""
    if request.method != "POST" or request.handler is None:
        return
    outcome = "ok" if request.status < 400 else (request.error or f"http_{request.status}")
    COMMANDS.labels(request.handler, outcome).inc()
