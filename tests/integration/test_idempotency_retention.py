"""Expired idempotency records are purged by the real `bank worker`'s periodic sweep, and the
retention is read from `IDEMPOTENCY_RETENTION`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from kernel.events import NewEvent
from kernel.settings import Settings, SettingsError, parse_duration
from tests.support import (
    age_command_records,
    command_record_count,
    make_settings,
    start_bank,
    stop,
    wait_until,
)
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.records import CommandRecord

pytest_plugins = ["tests.fixtures"]


async def _append_with_key(database_url: str, key: str, expected_version: int) -> None:
    engine = create_async_store_engine(database_url)
    try:
        record = CommandRecord(key, "f" * 64, "", 0, 0, {}, "key-1")
        await EventStore(engine).append("acc-1", [NewEvent("X", {})], expected_version, record)
    finally:
        await engine.dispose()


def test_the_worker_sweep_purges_expired_idempotency_records_only(
    settings: Settings, tmp_path: Path
) -> None:
    settings = make_settings(settings, idempotency_retention=timedelta(hours=1))
    asyncio.run(_append_with_key(settings.store.database_url, "old", 0))
    age_command_records(settings.store.database_url, timedelta(hours=2))
    asyncio.run(_append_with_key(settings.store.database_url, "new", 1))
    assert command_record_count(settings.store.database_url) == 2

    worker = start_bank(["worker"], settings, tmp_path / "worker.log")
    try:
        wait_until(
            lambda: command_record_count(settings.store.database_url) == 1, 30, "the sweep's purge"
        )
    finally:
        stop(worker)

    async def new_is_kept() -> bool:
        engine = create_async_store_engine(settings.store.database_url)
        try:
            return await EventStore(engine).find_command("key-1", "new") is not None
        finally:
            await engine.dispose()

    assert asyncio.run(new_is_kept())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("86400", timedelta(hours=24)),
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_a_retention_is_whole_seconds_or_a_duration_with_a_unit(
    raw: str, expected: timedelta
) -> None:
    assert parse_duration("IDEMPOTENCY_RETENTION", raw) == expected


@pytest.mark.parametrize("raw", ["0", "0h", "-5", "1.5h", "24 hours", "h", "1w"])
def test_a_retention_that_is_not_a_positive_duration_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="IDEMPOTENCY_RETENTION"):
        parse_duration("IDEMPOTENCY_RETENTION", raw)


def test_the_retention_defaults_to_24_hours_and_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDEMPOTENCY_RETENTION", raising=False)
    assert Settings.from_env().store.idempotency_retention == timedelta(hours=24)

    monkeypatch.setenv("IDEMPOTENCY_RETENTION", "2h")
    assert Settings.from_env().store.idempotency_retention == timedelta(hours=2)
