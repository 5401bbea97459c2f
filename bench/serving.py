"""The command lines that serve an app: the APIs' own server (granian, through `app.serving`) for
the ceilings, and uvicorn for the peer.

The ceilings are served by the very function `bank write-api` / `bank query-api` serve with
(app/serving.py: granian, uvloop, the same options), so a ceiling and an API differ only in the
app. uvicorn is started as the APIs were before they moved to granian: uvloop, httptools, log level
warning, no access log.
"""

from __future__ import annotations

from bench.servers import HOST, python_module


def served_like_the_apis(factory: str, port: int, workers: int = 1) -> list[str]:
    return python_module("app.serving", factory, HOST, str(port), str(workers))


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
