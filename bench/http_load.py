"""One HTTP measurement, shared by the write and query benchmarks: start a server, warm it up, drive
it with wrk, stop it. The ceilings (a minimal app on granian and on uvicorn) go through the same
function, so a target and its ceilings differ only in the app being served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench.config import BenchConfig
from bench.profiling import sampled
from bench.servers import running
from bench.wrk import LoadResult, run_wrk

ACCOUNTS = 1000


def measure_server(
    name: str,
    command: Sequence[str],
    port: int,
    kind: str,
    config: BenchConfig,
    *,
    env: Mapping[str, str] | None = None,
    profiles: list[str] | None = None,
) -> LoadResult:
    """Serve `command` on `port`, warm up, then load it for the configured time with wrk."""
    with running(name, command, env=env, port=port) as server:
        if not config.smoke:
            run_wrk(server.url, kind, config.seconds(2, 1), ACCOUNTS)  # warm-up
        seconds = config.seconds(10, 3, 1)
        with sampled(server.process.pid, name, profiles, subprocesses=True):
            return run_wrk(server.url, kind, seconds, ACCOUNTS)
