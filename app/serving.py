"""How `bank write-api` and `bank query-api` serve their app: granian, one supervisor process and
`workers` worker processes, each building the app from its factory.

granian parses HTTP in Rust and hands Python one ready ASGI call per request: the balance read
served ~23% more reads on it than on uvicorn, and the minimal apps 1.5-1.8x; the deposit measured
about the same on both (docs/benchmarks.md, 1 and 6). SIGINT or SIGTERM
to the supervisor stops the workers: each finishes its requests and runs the app's shutdown
(lifespan) hooks; one still busy after `STOP_GRACE_S` is killed. The benchmarks serve their
minimal ceiling apps through `serve` too (`python -m app.serving FACTORY HOST PORT WORKERS`), so
a ceiling and an API differ only in the app.
"""

from __future__ import annotations

import os
import sys
import tempfile

STOP_GRACE_S = 5
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def serve(factory: str, host: str, port: int, workers: int) -> None:
    """Serve the app `factory` ("module:function") until SIGINT or SIGTERM."""
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server import Server

    _fresh_metrics_dir()
    Server(
        factory,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        websockets=False,
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=STOP_GRACE_S,
        factory=True,
    ).serve()


def _fresh_metrics_dir() -> None:
    """prometheus_client's multiprocess mode: every worker of this server writes its samples to
    one directory and a scrape of any worker sums them all. It must be set before the workers
    import prometheus_client, and must not hold the files of an earlier run."""
    os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="bank-metrics-")


if __name__ == "__main__":
    target, address, bind_port, worker_count = sys.argv[1:5]
    serve(target, address, int(bind_port), int(worker_count))
