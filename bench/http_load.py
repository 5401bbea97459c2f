"""One HTTP measurement, shared by the write and query benchmarks: start a server, warm it up, drive
it with wrk, stop it. The ceiling (a minimal app served as the APIs are: granian, app/serving.py)
and the peer (the minimal app on uvicorn) go through the same function, so a target and its
ceiling differ only in the app being served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench import serving
from bench.config import BenchConfig
from bench.profiling import sampled
from bench.servers import free_port, running
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


@dataclass(frozen=True, slots=True)
class AgainstCeilings:
    granian: LoadResult
    """The minimal app served as the APIs are (granian, one worker process): the ceiling."""
    uvicorn: LoadResult
    """The minimal app on uvicorn with the API's worker count: the peer."""
    api: LoadResult
    """Our API, as `bank <process>` serves it."""


def measure_against_ceilings(
    minimal_app: str,
    minimal_label: str,
    process: str,
    api_label: str,
    kind: str,
    config: BenchConfig,
    *,
    env: Mapping[str, str],
    profiles: list[str] | None,
) -> AgainstCeilings:
    """The same wrk load on the minimal app (served as the APIs are, then on uvicorn) and on
    `bank <process>`."""
    workers = config.workers
    port = free_port()
    granian = measure_server(
        f"{minimal_label} on granian",
        serving.served_like_the_apis(minimal_app, port),
        port,
        kind,
        config,
    )
    port = free_port()
    uvicorn = measure_server(
        f"{minimal_label} on uvicorn ({workers} worker)",
        serving.uvicorn(minimal_app, port, workers),
        port,
        kind,
        config,
    )
    port = free_port()
    api = measure_server(
        api_label,
        serving.bank(process, port, workers),
        port,
        kind,
        config,
        env=env,
        profiles=profiles,
    )
    return AgainstCeilings(granian, uvicorn, api)
