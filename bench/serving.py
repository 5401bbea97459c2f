"""The command lines that serve an app: the ceiling's server (granian) and the APIs' own (uvicorn).

uvicorn is started exactly as `bank write-api` / `bank query-api` start it (app/cli.py `_serve`):
uvloop, httptools, log level warning, no access log.
"""

from __future__ import annotations

from bench.servers import HOST, python_module


def granian(factory: str, port: int, workers: int = 1) -> list[str]:
    return python_module(
        "granian",
        "--interface", "asgi",
        "--host", HOST,
        "--port", str(port),
        "--workers", str(workers),
        "--loop", "uvloop",
        "--no-ws",
        "--log-level", "warning",
        "--factory",
        factory,
    )  # fmt: skip


def uvicorn(factory: str, port: int, workers: int = 1) -> list[str]:
    return python_module(
        "uvicorn",
        factory,
        "--factory",
        "--host", HOST,
        "--port", str(port),
        "--workers", str(workers),
        "--loop", "uvloop",
        "--http", "httptools",
        "--log-level", "warning",
        "--no-access-log",
    )  # fmt: skip


def bank(process: str, port: int | None = None, workers: int = 1) -> list[str]:
    """`bank write-api`, `bank query-api` or `bank worker`, as the CLI runs them."""
    if port is None:
        return python_module("app.cli", process)
    return python_module(
        "app.cli", process, "--host", HOST, "--port", str(port), "--workers", str(workers)
    )
