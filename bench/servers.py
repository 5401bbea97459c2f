"""Service processes for a benchmark: started on free 127.0.0.1 ports, stopped however we leave.

Each process gets its own session (process group), so that uvicorn's or granian's workers stop with
it, and a Ctrl-C in the terminal reaches only the suite, which then stops them in order.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


class ServerFailed(RuntimeError):
    """A service process exited or never answered its readiness check."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 (our own server)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(server: Server, health_path: str | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(f"{server.name} exited early:\n{server.log_tail()}")
        if health_path is not None and _answers(server.url + health_path):
            return
        if health_path is None:
            return
        time.sleep(0.1)
    raise ServerFailed(f"{server.name} did not answer {health_path} in time:\n{server.log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(group, signal.SIGKILL)
        process.wait()


@contextmanager
def running(
    name: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    port: int = 0,
    health_path: str | None = "/health",
) -> Iterator[Server]:
    """Start `command` (which must listen on `port` if it serves), wait for it, stop it on exit."""
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    log = log_dir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            env=dict(env if env is not None else os.environ),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log)
    try:
        wait_until_ready(server, health_path)
        yield server
    finally:
        stop(process)
        if os.environ.get("BENCH_KEEP_LOGS"):
            sys.stderr.write(f"{name} log: {log}\n")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
