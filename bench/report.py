"""Writing a run into docs/benchmarks.md: only between its markers, so the prose around them (the
analysis of where the time goes) is kept. A --profile run fills the profile section instead."""

from __future__ import annotations

from pathlib import Path

RESULTS = ("<!-- bench:results:start -->", "<!-- bench:results:end -->")
PROFILES = ("<!-- bench:profiles:start -->", "<!-- bench:profiles:end -->")


def replace_section(text: str, markers: tuple[str, str], body: str) -> str:
    start, end = markers
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, _, rest = text.partition(start)
        _, _, after = rest.partition(end)
        return before + block + after
    return text.rstrip() + "\n\n" + block + "\n"


def write_section(path: Path, markers: tuple[str, str], body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_section(text, markers, body))
