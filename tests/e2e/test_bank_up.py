"""`bank up` from an empty directory: migrates, serves both APIs and a worker, stops cleanly on
SIGTERM, and keeps its data for the next start."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import BANK, free_port, wait_until

BANNER_END = "Ctrl-C stops everything."


def _printed_token(log: str) -> str:
    exports = [line.split("=", 1)[1] for line in log.splitlines() if "export BANK_TOKEN=" in line]
    assert exports, f"no token in the banner: {log[-2000:]}"
    return exports[-1].strip()


class Stack:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.write_url = f"http://127.0.0.1:{free_port()}"
        self.query_url = f"http://127.0.0.1:{free_port()}"
        self.log = workdir / "bank-up.log"
        self.log_start = self.log.stat().st_size if self.log.exists() else 0  # a restart appends
        args = [
            *BANK,
            "up",
            "--write-port",
            self.write_url.rsplit(":", 1)[1],
            "--query-port",
            self.query_url.rsplit(":", 1)[1],
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args, cwd=workdir, env=env, stdout=out, stderr=out, start_new_session=True
            )
        # What a newcomer does: wait for the banner, then paste what it printed.
        wait_until(
            lambda: BANNER_END in self.output(),
            timeout=60,
            what=f"the banner of `bank up` (log: {self.log.read_text()[-2000:]})",
        )
        self.token = _printed_token(self.output())
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def output(self) -> str:
        """What this run of `bank up` has printed so far."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        """After a failure: SIGKILL the whole process group, children included."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _env(**overrides: str) -> dict[str, str]:
    unset = {"DATABASE_URL", "REDIS_URL", "BANK_MASTER_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(overrides)
    return env


def _children_of(pid: int) -> list[str]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return result.stdout.split()


def _open_and_deposit(stack: Stack, account_id: str) -> int:
    opened = httpx.post(
        f"{stack.write_url}/accounts",
        json={"owner": "Up", "account_id": account_id},
        headers=stack.headers,
    )
    assert opened.status_code == 201, opened.text
    deposit = httpx.post(
        f"{stack.write_url}/accounts/{account_id}/deposit",
        json={"amount": "7.25"},
        headers=stack.headers,
    )
    assert deposit.status_code == 200, deposit.text
    return int(deposit.json()["position"])


def test_bank_up_serves_both_apis_and_stops_cleanly_on_sigterm(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    stack = Stack(tmp_path, _env(REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix))
    try:
        position = _open_and_deposit(stack, "alice")
        balance = httpx.get(
            f"{stack.query_url}/accounts/alice/balance",
            params={"min_position": position, "wait_ms": 10000},
            headers=stack.headers,
            timeout=15,
        )
        assert balance.status_code == 200, balance.text
        assert balance.json()["balance"] == "7.25"
        assert (tmp_path / "var" / "bank.db").exists(), "the embedded SQLite store lives in ./var/"
        children = _children_of(stack.process.pid)
        assert len(children) == 3
        assert stack.stop() == 0
        assert _children_of(stack.process.pid) == []
        for pid in children:
            assert not Path(f"/proc/{pid}").exists(), f"child {pid} outlived `bank up`"
        log = stack.log.read_text()
        for line in ("write API", "query API", "curl", "Authorization: Bearer", "BANK_TOKEN="):
            assert line in log
    finally:
        stack.kill()


@pytest.mark.usefixtures("redis_prefix")
def test_bank_up_without_redis_starts_an_embedded_one_and_keeps_data_across_restarts(
    tmp_path: Path,
) -> None:
    env = _env(BANK_LOCAL_REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    first = Stack(tmp_path, env)
    try:
        position = _open_and_deposit(first, "bob")
        wait_until(
            lambda: (
                httpx.get(
                    f"{first.query_url}/accounts/bob/balance",
                    params={"min_position": position},
                    headers=first.headers,
                ).status_code
                == 200
            ),
            timeout=20,
            what="the embedded Redis read model to show bob",
        )
        assert "embedded" in first.log.read_text()
        assert first.stop() == 0
    finally:
        first.kill()

    second = Stack(tmp_path, env)
    try:
        assert second.headers == first.headers, "the local key is kept across restarts"
        events = httpx.get(f"{second.write_url}/accounts/bob/events", headers=second.headers)
        assert events.status_code == 200
        assert [e["type"] for e in events.json()["events"]] == ["AccountOpened", "MoneyDeposited"]
        # Its owner was sealed under the master key `bank up` made, kept and passed on again.
        assert events.json()["events"][0]["payload"]["owner"] == "Up"
        master_key = tmp_path / "var" / "master-key"
        assert master_key.stat().st_mode & 0o777 == 0o600
        with sqlite3.connect(tmp_path / "var" / "bank.db") as db:
            (stored,) = db.execute("SELECT payload FROM events WHERE position = 1").fetchone()
        assert set(json.loads(stored)["owner"]) == {"enc"}
        assert httpx.get(f"{second.query_url}/accounts/bob/balance").status_code == 401
        balance = httpx.get(f"{second.query_url}/accounts/bob/balance", headers=second.headers)
        assert balance.status_code == 200
        assert balance.json()["balance"] == "7.25"
        assert second.stop() == 0
    finally:
        second.kill()


def test_the_key_bank_up_prints_works_on_both_apis_the_moment_it_is_printed(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    stack = Stack(tmp_path, _env(REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix))
    try:
        # The first request of each, no retry: the banner comes once both APIs serve, with the
        # key already in the query API's Redis mirror (not one worker sweep later).
        query = httpx.get(f"{stack.query_url}/accounts/alice/balance", headers=stack.headers)
        assert query.status_code == 404, query.text  # known key, unknown account
        write = httpx.post(
            f"{stack.write_url}/accounts",
            json={"owner": "Alice", "account_id": "alice"},
            headers=stack.headers,
        )
        assert write.status_code == 201, write.text
        assert stack.token == (tmp_path / "var" / "local-api-key").read_text().strip()
        assert stack.stop() == 0
    finally:
        stack.kill()


def test_an_admin_beside_bank_up_rebuilds_without_exporting_its_master_key(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = _env(REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix)
    stack = Stack(tmp_path, env)
    try:
        _open_and_deposit(stack, "carol")  # her owner is sealed under ./var/master-key
        assert stack.stop() == 0
    finally:
        stack.kill()

    rebuild = subprocess.run(
        [*BANK, "projections", "rebuild", "--all"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    assert "BANK_MASTER_KEY" not in rebuild.stderr


def test_the_commands_the_banner_prints_work_when_pasted_at_once(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    env = _env(REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix)
    stack = Stack(tmp_path, env)
    try:
        banner = stack.output().split("try:", 1)[1].split(BANNER_END, 1)[0]
        commands = [line.strip() for line in banner.splitlines() if line.strip()]
        assert len(commands) == 3, banner
        pasted = subprocess.run(
            ["bash", "-c", "\n".join(f"{c}; echo" for c in commands)],
            env={**env, "BANK_TOKEN": stack.token},
            capture_output=True,
            text=True,
            timeout=30,
        )
        answers = [json.loads(line) for line in pasted.stdout.splitlines() if line.strip()]
        assert [a.get("balance") for a in answers[1:]] == ["12.50", "12.50"], pasted.stdout
        assert stack.stop() == 0
    finally:
        stack.kill()
