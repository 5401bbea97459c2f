"""Crypto-shredding end to end, with real processes: after `bank forget`, the owner's name is in no
read model, API answer or log line, a rebuild still shows "[erased]", and the money is untouched.
Without the master key, the processes that read personal data refuse to start."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from kernel.master_key import MasterKey, new_master_key_text
from kernel.personal_data import ERASED
from kernel.settings import Settings
from tests.support import (
    BANK,
    env_for,
    free_port,
    make_settings,
    read_side_settings,
    wait_until,
)
from write_side.command_bus import CommandBus
from write_side.commands import OpenAccount
from write_side.personal_data import PersonalData
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys

pytest_plugins = ["tests.fixtures"]  # settings, rdb, services

NAME = "Zelda Quux-Shredder"


@pytest.fixture
def settings(pg_url: str, redis_url: str, redis_prefix: str) -> Settings:
    base = read_side_settings(pg_url, redis_url, redis_prefix)
    return make_settings(base, master_key=new_master_key_text())


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _bank(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BANK, *args], env=env_for(settings), capture_output=True, text=True, timeout=120
    )


def _redis_text(client: redis.Redis, prefix: str) -> str:
    """Every key under the test's prefix and everything it holds, as one text."""
    parts: list[str] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        parts.append(f"{key} {_value_of(client, key)}")
    return "\n".join(parts)


def _value_of(client: redis.Redis, key: str) -> Any:
    readers: dict[str, Any] = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda k: client.lrange(k, 0, -1),
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1),
        "stream": client.xrange,
    }
    return readers.get(client.type(key), lambda _: "")(key)


def _money_views(queries: httpx.Client, position: int) -> dict[str, Any]:
    """Every amount the query API shows for the two accounts (owners left out)."""
    params = {"min_position": position}
    views: dict[str, Any] = {}
    for account in ("z1", "z2"):
        balance = _ok(queries.get(f"/accounts/{account}/balance", params=params))
        statement = _ok(queries.get(f"/accounts/{account}/statement", params=params))
        views[account] = (
            {k: v for k, v in balance.items() if k not in ("owner", "version", "position")},
            [(e["type"], e["amount"], e["balance_after"]) for e in statement["entries"]],
        )
    summary = _ok(queries.get("/summary"))
    views["summary"] = {k: v for k, v in summary.items() if k != "events_projected"}
    return views


def _owner(queries: httpx.Client, account: str, position: int) -> str:
    balance = _ok(queries.get(f"/accounts/{account}/balance", params={"min_position": position}))
    return str(balance["owner"])


def test_after_bank_forget_the_name_is_nowhere_and_every_amount_stays(
    services: tuple[httpx.Client, httpx.Client],
    settings: Settings,
    rdb: redis.Redis,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    writes, queries = services
    _ok(writes.post("/accounts", json={"owner": NAME, "account_id": "z1"}))
    _ok(writes.post("/accounts", json={"owner": "Other Person", "account_id": "z2"}))
    _ok(writes.post("/accounts/z1/deposit", json={"amount": "100.00"}))
    _ok(writes.post("/transfers", json={"from_account": "z1", "to_account": "z2", "amount": "30"}))
    last = _ok(writes.post("/accounts/z1/withdraw", json={"amount": "5.25"}))["position"]
    assert _owner(queries, "z1", last) == NAME  # revealed by the projector
    before = _money_views(queries, last)

    forgot = _bank(settings, "forget", "z1")

    assert forgot.returncode == 0, forgot.stderr
    assert "personal data erased" in forgot.stdout
    (tmp_path / "forget.log").write_text(forgot.stdout + forgot.stderr)
    wait_until(lambda: _owner(queries, "z1", last) == ERASED, 30, "the erasure to be projected")
    erased_at = _ok(writes.get("/accounts/z1/events"))["events"][-1]["position"]
    after = _money_views(queries, erased_at)
    assert after["z2"] == before["z2"]
    assert after["summary"] == before["summary"]
    assert after["z1"][0] == before["z1"][0]
    assert after["z1"][1][1:] == before["z1"][1]  # one "0.00" entry more: the erasure itself
    assert after["z1"][1][0] == ("PersonalDataErased", "0.00", "64.75")
    assert _owner(queries, "z2", erased_at) == "Other Person"

    answers = [
        writes.get("/accounts/z1/events").text,
        queries.get("/accounts/z1/balance").text,
        queries.get("/accounts/z1/statement").text,
        queries.get("/accounts", params={"sort": "id"}).text,
    ]
    assert all(NAME not in text for text in answers)
    assert ERASED in answers[0]
    assert NAME not in _redis_text(rdb, redis_prefix)

    rebuilt = _bank(settings, "projections", "rebuild", "--all")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert _owner(queries, "z1", erased_at) == ERASED
    assert _money_views(queries, erased_at) == after
    assert NAME not in _redis_text(rdb, redis_prefix)

    moved = _ok(writes.post("/accounts/z1/deposit", json={"amount": "0.25"}))
    assert moved["balance"] == "65.00"  # the name is gone, not the account
    logs = "\n".join(path.read_text(errors="replace") for path in tmp_path.glob("*.log"))
    assert logs
    assert NAME not in logs


def test_forgetting_an_account_that_does_not_exist_is_one_line_and_exit_1(
    settings: Settings,
) -> None:
    result = _bank(settings, "forget", "nobody")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: account 'nobody' does not exist"]


async def _seal_one_account(settings: Settings) -> None:
    """Open one account through the command path with the master key: its owner is stored sealed."""
    engine = create_async_store_engine(settings.store.database_url)
    try:
        master = MasterKey(settings.personal_data.master_key or "")
        personal_data = PersonalData(PersonalKeys(engine, master))
        repository = AccountRepository(EventStore(engine), 100, personal_data=personal_data)
        bus = CommandBus(repository, NoPublisher(), deadline_s=10)
        await bus.execute(OpenAccount(NAME, account_id="someone"))
    finally:
        await engine.dispose()


def test_processes_refuse_to_start_without_the_master_key_once_data_is_encrypted(
    settings: Settings,
) -> None:
    without_key = make_settings(settings, master_key=None)
    assert _bank(without_key, "worker", "--burst").returncode == 0  # nothing encrypted yet
    asyncio.run(_seal_one_account(settings))

    for process in (["write-api", "--port", str(free_port())], ["worker", "--burst"]):
        refused = _bank(without_key, *process)

        assert refused.returncode == 1, process
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert "BANK_MASTER_KEY" in lines[0]
    for admin in (["rebuild", "--all"], ["rebuild", "--all", "--dry-run"]):
        refused = _bank(without_key, "projections", *admin)

        assert refused.returncode == 1, admin
        assert "Traceback" not in refused.stderr, refused.stderr
        last = refused.stderr.strip().splitlines()[-1]  # after the progress bar's label
        assert last.startswith("Error: "), refused.stderr
        assert "BANK_MASTER_KEY" in last, refused.stderr
    assert _bank(settings, "worker", "--burst").returncode == 0  # with the key it runs
