"""The `bank` CLI: every command has help, admin commands work on real PostgreSQL and Redis, and
expected operational failures print one clear line, exit non-zero, and show no traceback."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
import redis
from click.testing import CliRunner

from app.cli import bank
from kernel.read_model_layout import BALANCES, ReadModelKeys
from kernel.settings import Settings
from projectors.catch_up import run_catch_up
from tests.support import BANK, env_for, write_traffic

pytest_plugins = ["tests.fixtures"]  # settings, rdb

COMMANDS = [
    [],
    ["migrate"],
    ["up"],
    ["write-api"],
    ["query-api"],
    ["worker"],
    ["demo"],
    ["projections"],
    ["projections", "status"],
    ["projections", "rebuild"],
    ["apikey"],
    ["verify"],
    ["digest"],
    ["export"],
    ["import"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "bank")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(bank, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_bank_help_lists_every_command() -> None:
    output = CliRunner().invoke(bank, ["--help"]).output
    for name in (
        "migrate",
        "up",
        "write-api",
        "query-api",
        "worker",
        "demo",
        "projections",
        "apikey",
        "verify",
        "digest",
        "export",
        "import",
    ):
        assert name in output


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BANK, *args],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_projections_status_shows_checkpoint_head_and_lag(settings: Settings) -> None:
    write_traffic(settings.store.database_url, accounts=3, events_per_account=10)
    before = _run(settings, "projections", "status")
    assert before.returncode == 0, before.stderr
    assert "checkpoint" in before.stdout
    assert "lag" in before.stdout
    balances_row = next(line for line in before.stdout.splitlines() if line.startswith("balances"))
    assert balances_row.split()[2:5] == ["0", "30", "30"]  # checkpoint, head, lag
    asyncio.run(run_catch_up(settings, wait_for_locks=True))
    after = _run(settings, "projections", "status")
    balances_row = next(line for line in after.stdout.splitlines() if line.startswith("balances"))
    assert balances_row.split()[2:5] == ["30", "30", "0"]


def test_dry_run_reports_consistency_and_detects_a_tampered_read_model(
    settings: Settings, rdb: redis.Redis
) -> None:
    write_traffic(settings.store.database_url, accounts=4, events_per_account=12)
    asyncio.run(run_catch_up(settings, wait_for_locks=True))
    clean = _run(settings, "projections", "rebuild", "--all", "--dry-run")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "balances: consistent" in clean.stdout
    assert "statements: consistent" in clean.stdout

    keys = ReadModelKeys(settings.redis.prefix)
    live = keys.generation(BALANCES, int(rdb.get(keys.live(BALANCES)) or 1))
    rdb.hset(live.account("acct-00001"), "balance", 123456789)
    tampered = _run(settings, "projections", "rebuild", "--dry-run", "balances")
    assert tampered.returncode == 1
    assert "difference" in tampered.stdout
    assert "acct-00001" in tampered.stdout
    assert "123456789" in tampered.stdout
    # A dry run changes nothing live: the tampered value is still there, and no scratch is left.
    assert rdb.hget(live.account("acct-00001"), "balance") == "123456789"
    assert list(rdb.scan_iter(match=f"{settings.redis.prefix}:{BALANCES}:g2:*")) == []
    # A real rebuild repairs it.
    assert _run(settings, "projections", "rebuild", "balances").returncode == 0
    assert _run(settings, "projections", "rebuild", "--dry-run", "balances").returncode == 0


def test_a_second_rebuild_of_the_same_projection_is_refused_clearly(
    settings: Settings, rdb: redis.Redis
) -> None:
    keys = ReadModelKeys(settings.redis.prefix)
    rdb.set(keys.rebuild_lock(BALANCES), "someone-else", px=60_000)
    result = _run(settings, "projections", "rebuild", "balances")
    assert result.returncode == 1
    assert "already running" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("dry_run", [False, True], ids=["rebuild", "dry run"])
def test_a_rebuild_that_cannot_get_the_runner_lock_in_time_fails_with_one_line(
    settings: Settings, rdb: redis.Redis, dry_run: bool
) -> None:
    write_traffic(settings.store.database_url, accounts=3, events_per_account=10)
    asyncio.run(run_catch_up(settings, wait_for_locks=True))
    keys = ReadModelKeys(settings.redis.prefix)
    rdb.set(keys.lock(BALANCES), "a-stuck-runner", px=60_000)

    args = ["projections", "rebuild", "balances", "--runner-wait", "0.5"]
    result = _run(settings, *args, *(["--dry-run"] if dry_run else []))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    assert "runner did not hand over its lock within 0.5 s" in error_lines[0]
    # Nothing live changed, the run's scratch generation is gone, and its locks are released.
    assert rdb.get(keys.live(BALANCES)) == "1"
    assert list(rdb.scan_iter(match=f"{settings.redis.prefix}:{BALANCES}:g2:*")) == []
    assert not rdb.exists(keys.rebuild_lock(BALANCES))
    assert not rdb.exists(keys.handover(BALANCES))
    assert rdb.get(keys.lock(BALANCES)) == "a-stuck-runner"


def test_rebuild_needs_a_name_or_all(settings: Settings) -> None:
    result = _run(settings, "projections", "rebuild")
    assert result.returncode == 2
    assert "--all" in result.stderr
    unknown = _run(settings, "projections", "rebuild", "nonsense")
    assert unknown.returncode == 2
    assert "balances" in unknown.stderr


def test_demo_fills_the_store_through_the_command_path(settings: Settings) -> None:
    result = _run(settings, "demo", "--accounts", "5", "--events", "60", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "appended 60 events to 5 accounts" in result.stdout
    status = _run(settings, "projections", "status")
    assert " 60 " in status.stdout  # the store's head


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["migrate"],
            {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"},
            "database is unreachable",
        ),
        (["migrate"], {"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL must be"),
        (["migrate"], {"DATABASE_URL": "::not a url::"}, "not a valid SQLAlchemy URL"),
        (["projections", "status"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "Redis is unreachable"),
        (["worker", "--burst"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, "Redis is unreachable"),
        (["write-api"], {"SNAPSHOT_EVERY": "often"}, "SNAPSHOT_EVERY must be a whole number of at least 1"),
        (["write-api"], {"BANK_AUTH": "maybe"}, "BANK_AUTH must be"),
    ],
    ids=["db-down", "wrong-backend", "bad-url", "redis-down-status", "redis-down-worker",
         "bad-number", "bad-auth-switch"],
)  # fmt: skip
def test_operational_errors_are_one_clear_line(
    settings: Settings, args: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [*BANK, *args],
        env={**env_for(settings), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_commands_on_an_unmigrated_database_say_to_migrate(
    settings: Settings, tmp_path: object
) -> None:
    fresh = f"sqlite:///{tmp_path}/empty.db"
    result = subprocess.run(
        [*BANK, "projections", "status"],
        env={**env_for(settings), "DATABASE_URL": fresh},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "bank migrate" in result.stderr
    assert "Traceback" not in result.stderr
