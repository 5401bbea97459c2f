"""Where the time goes: py-spy samples a process (a server under load, or this one) while a benchmark
runs, and the stacks are summarised as markdown: CPU share per library and our hottest functions.

Only CPU-active samples are kept (py-spy skips idle threads), so the shares are of the time the
process was busy. Profiling slows the code down; a --profile run reports no figures.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLE_RATE = 250
TOP_FUNCTIONS = 14

# First match wins: the library a frame's file belongs to.
COMPONENTS = (
    ("sqlalchemy", "SQLAlchemy"),
    ("greenlet", "SQLAlchemy (greenlet bridge)"),
    ("psycopg_pool", "psycopg"),
    ("psycopg", "psycopg"),
    ("eventsourcing", "eventsourcing"),
    ("litestar", "Litestar"),
    ("uvicorn", "uvicorn"),
    ("httptools", "uvicorn"),
    ("granian", "granian"),
    ("redis", "redis-py"),
    ("rq", "RQ"),
    ("msgspec", "msgspec"),
    ("aiohttp", "aiohttp (load client)"),
    ("bench/", "bench harness"),
    ("write_side/", "our write side"),
    ("projectors/", "our projectors"),
    ("read_side/", "our read side"),
    ("(app/", "our shared kernel"),
    ("/app/", "our shared kernel"),
    ("asyncio", "asyncio / event loop"),
    ("uvloop", "asyncio / event loop"),
    ("decimal", "decimal / stdlib"),
    ("json", "decimal / stdlib"),
)
OUR_CODE = ("write_side/", "projectors/", "read_side/", "app/")


def _without_line(frame: str) -> str:
    """`name (path:line)` -> `name (path)`: one row per function, not per line."""
    head, _, tail = frame.rpartition(":")
    return f"{head})" if tail.rstrip(")").isdigit() else frame


def _is_ours(function: str) -> bool:
    path = function.partition(" (")[2]
    return "site-packages" not in path and any(
        path.startswith(part) or f"/{part}" in path for part in OUR_CODE
    )


def _component(frame: str) -> str:
    for needle, name in COMPONENTS:
        if needle in frame:
            return name
    return "other (stdlib, interpreter)"


def _stacks(raw: str) -> Iterator[tuple[list[str], int]]:
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def summarise(label: str, raw: str) -> str:
    """Markdown: self time per component, and inclusive time of our own hottest functions."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(raw):
        total += count
        self_time[_component(frames[-1])] += count
        for function in {_without_line(frame) for frame in frames}:
            if (
                _is_ours(function) and "app/cli.py" not in function
            ) or "sqlalchemy/ext/asyncio" in function:
                inclusive[function] += count
    if total == 0:
        return f"#### {label}\n\nno samples (the process was idle or exited)\n"
    lines = [
        f"#### {label}",
        "",
        f"{total:,} samples at {SAMPLE_RATE} Hz (idle threads left out; waits inside psycopg's "
        "C code count as psycopg).",
        "",
    ]
    lines += ["| where (self time) | share |", "|---|---:|"]
    lines += [
        f"| {name} | {n / total:.0%} |" for name, n in self_time.most_common() if n / total >= 0.01
    ]
    lines += ["", "| our functions (and SQLAlchemy's async entry points), inclusive | share |"]
    lines += ["|---|---:|"]
    for frame, n in inclusive.most_common(TOP_FUNCTIONS):
        lines.append(f"| `{_short(frame)}` | {n / total:.0%} |")
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def py_spy() -> str:
    return str(Path(sys.executable).parent / "py-spy")


@contextmanager
def sampled(
    pid: int, label: str, sink: list[str] | None, *, subprocesses: bool = False
) -> Iterator[None]:
    """Sample `pid` while the block runs and append the summary to `sink` (None: don't sample)."""
    if sink is None:
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="bench-prof-"))
    out = folder / "stacks.txt"
    command = [py_spy(), "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE)]
    command += ["--format", "raw", "--output", str(out), "--nonblocking"]
    command += ["--subprocesses"] if subprocesses else []
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
    raw = out.read_text() if out.exists() else ""
    shutil.rmtree(folder, ignore_errors=True)
    sink.append(summarise(label, raw))
