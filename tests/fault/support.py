"""What the fault tests share: a private Redis that can be stopped and started again, the three
`bank` processes, a deposit load that records every answer, and the checks every scenario ends with
(each acknowledged command stored once; the projections caught up and equal to a replay).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis

from kernel.read_model_layout import PROJECTION_NAMES
from kernel.settings import Settings
from tests.support import (
    BANK,
    checkpoints,
    env_for,
    free_port,
    projected,
    replay,
    start_bank,
    stop,
    wait_until,
)

# --- a Redis of the test's own -------------------------------------------------------------------


class PrivateRedis:
    """A `redis-server` on a free port with no persistence: a restart comes back empty.

    The shared Redis on 6379 is never restarted; tests that take Redis away use one of these.
    """

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        command += ["--dir", str(self._workdir)]
        with (self._workdir / "redis.log").open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=log)
        wait_until(self.answers, timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """SIGTERM, as a supervisor would; with `--save ""` nothing is written to disk."""
        if self._process is not None:
            stop(self._process)
            self._process = None

    def answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2, socket_timeout=0.2)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()


# --- the processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    write_url: str
    query_url: str


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running(settings: Settings, logs: Path, *, query_api: bool, worker: bool) -> Iterator[Stack]:
    """A `bank write-api` (and optionally a query API and a worker) on free ports; all stopped on
    the way out, whatever happened."""
    write_port, query_port = free_port(), free_port()
    commands = [["write-api", "--port", str(write_port)]]
    commands += [["query-api", "--port", str(query_port)]] if query_api else []
    commands += [["worker"]] if worker else []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for args in commands:
            processes.append(start_bank(args, settings, logs / f"{args[0]}.log"))
        stack = Stack(f"http://127.0.0.1:{write_port}", f"http://127.0.0.1:{query_port}")
        for url in [stack.write_url] + ([stack.query_url] if query_api else []):
            wait_until(lambda url=url: _answers(f"{url}/health"), 30, f"{url} to answer")
        yield stack
    finally:
        for process in processes:
            stop(process)


def bank(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a `bank` CLI command to completion with the scenario's environment."""
    return subprocess.run(
        [*BANK, *args], env=env_for(settings), capture_output=True, text=True, timeout=timeout
    )


# --- load ---------------------------------------------------------------------------------------


@dataclass
class DepositLoad:
    """One thread per account, depositing 1.00 with a fresh Idempotency-Key until stopped.

    Every answer is counted by status; the keys of the 2xx answers are the acknowledged commands.
    A transport error (no answer at all) is counted as status 0 and proves nothing either way.
    Every error answer is also counted by its (status, code, detail).
    """

    url: str
    accounts: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    errors: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> DepositLoad:
        self._threads = [threading.Thread(target=self._run, args=(a,)) for a in self.accounts]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def acknowledged_count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for_more(self, commands: int, what: str, timeout: float = 20) -> None:
        """Poll until `commands` more commands than now have been acknowledged."""
        target = self.acknowledged_count() + commands
        wait_until(lambda: self.acknowledged_count() >= target, timeout, what)

    def _run(self, account_id: str) -> None:
        with httpx.Client(base_url=self.url, timeout=10, headers=self.headers) as client:
            while not self._stop.is_set():
                key = uuid.uuid4().hex
                try:
                    response = client.post(
                        f"/accounts/{account_id}/deposit",
                        json={"amount": "1.00"},
                        headers={"Idempotency-Key": key},
                    )
                    status = response.status_code
                except httpx.TransportError:
                    status, response = 0, None
                with self._lock:
                    self.statuses[status] += 1
                    if 200 <= status < 300:
                        self.acknowledged.append(key)
                    elif response is not None:
                        self.errors[_error_of(response)] += 1


def _error_of(response: httpx.Response) -> tuple[int, str, str]:
    try:
        body = response.json()
        return response.status_code, str(body["error"]), str(body["detail"])
    except (ValueError, KeyError, TypeError):
        return response.status_code, "(not an error body)", response.text[:200]


# --- what every scenario ends with --------------------------------------------------------------


def events_by_idempotency_key(database_url: str) -> Counter[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT metadata->>'idempotency_key' FROM events WHERE metadata ? 'idempotency_key'"
        ).fetchall()
    return Counter(row[0] for row in rows)


def assert_each_acknowledged_command_stored_once(
    database_url: str, acknowledged: list[str]
) -> None:
    stored = events_by_idempotency_key(database_url)
    missing = [key for key in acknowledged if stored[key] == 0]
    assert not missing, f"{len(missing)} acknowledged commands have no event"
    duplicated = {key: n for key, n in stored.items() if n > 1}
    assert not duplicated, f"commands stored more than once: {duplicated}"


def store_head(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()
    return int(row[0]) if row else 0


def stored_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def wait_for_projections(client: redis.Redis, settings: Settings, timeout: float = 30) -> int:
    """Poll until every projection's checkpoint is the store's head; returns that head."""
    head = store_head(settings.store.database_url)
    expected = dict.fromkeys(PROJECTION_NAMES, head)
    wait_until(
        lambda: checkpoints(client, settings.redis.prefix) == expected,
        timeout,
        f"the projections to reach position {head}",
    )
    return head


def assert_projections_equal_a_replay(client: redis.Redis, settings: Settings) -> None:
    """The projections must have caught up already: a dry run catches the live models up itself,
    so only a check made before it says what the worker produced on its own.

    Two judges: our independent replay (tests.support), and `bank projections rebuild
    --all --dry-run`, which replays with the projector code into a scratch generation and compares
    key by key. It must exit 0 and report every projection consistent.
    """
    assert projected(client, settings.redis.prefix) == replay(settings.store.database_url)
    result = bank(settings, "projections", "rebuild", "--all", "--dry-run")
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    for name in PROJECTION_NAMES:
        assert f"{name}: consistent with a replay of the store" in result.stdout, report
    assert "difference" not in result.stdout, report


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
