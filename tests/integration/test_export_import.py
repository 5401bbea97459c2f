"""`bank export` / `bank import` and the audit CLI, through the real `bank` command: a store moves
SQLite -> PostgreSQL -> SQLite with identical events, hashes and transfer records; an import
refuses a store that has events and names the first broken line of a tampered file."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.audit_support import bank, execute, fill_store
from write_side.store.database import create_sync_store_engine
from write_side.store.queries import EVENT_COLUMNS, recorded_event
from write_side.store.schema import events


def _table(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_sync_store_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def _events(url: str) -> list[tuple[Any, ...]]:
    """Every stored field, typed (UUIDs, UTC times, JSON as Python values)."""
    engine = create_sync_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(*EVENT_COLUMNS).order_by(events.c.position))
            return [dataclasses.astuple(recorded_event(row)) for row in rows]
    finally:
        engine.dispose()


def _transfers(url: str) -> list[tuple[Any, ...]]:
    rows = _table(url, "SELECT transfer_id, fingerprint, result, last_position FROM transfers")
    return sorted((t, f, json.loads(r) if isinstance(r, str) else r, p) for t, f, r, p in rows)


def _another_sqlite(tmp_path: Path, template: Path, name: str) -> str:
    path = tmp_path / name
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def test_a_store_moves_sqlite_to_postgresql_to_sqlite_unchanged(
    sqlite_url: str, pg_url: str, tmp_path: Path, migrated_sqlite_template: Path
) -> None:
    head = fill_store(sqlite_url)
    first, second, third = (tmp_path / f"export-{n}.jsonl" for n in range(3))
    back = _another_sqlite(tmp_path, migrated_sqlite_template, "back.db")

    assert bank(sqlite_url, "export", str(first)).returncode == 0
    imported = bank(pg_url, "import", str(first))
    assert imported.returncode == 0, imported.stderr
    assert f"imported {head} events" in imported.stdout
    assert bank(pg_url, "export", str(second)).returncode == 0
    assert bank(back, "import", str(second)).returncode == 0
    assert bank(back, "export", str(third)).returncode == 0

    assert first.read_bytes() == second.read_bytes() == third.read_bytes()
    lines = [json.loads(line) for line in first.read_text(encoding="utf-8").splitlines()]
    assert [line["position"] for line in lines] == list(range(1, head + 1))
    assert lines[0]["payload"]["owner"] == "Zoë Ångström 山田 😀"
    assert [line["transfer"]["transfer_id"] for line in lines if "transfer" in line] == [
        "t-1",
        "t-2",
        "t-2.reversal",
    ]
    assert lines[-2]["payload"]["reversal_of"] == "t-2"
    assert _events(sqlite_url) == _events(pg_url) == _events(back)
    assert _transfers(sqlite_url) == _transfers(pg_url) == _transfers(back)
    digests = {bank(url, "digest").stdout.strip() for url in (sqlite_url, pg_url, back)}
    assert len(digests) == 1
    for url in (pg_url, back):
        verified = bank(url, "verify", "--digest", *digests)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.startswith(f"{head} events verified; head ")


def test_an_imported_postgresql_store_keeps_appending_after_the_imported_positions(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    head = fill_store(sqlite_url)
    file = tmp_path / "export.jsonl"
    bank(sqlite_url, "export", str(file))
    assert bank(pg_url, "import", str(file)).returncode == 0

    fill_more = _table(
        pg_url,
        'SELECT outcome, last_position FROM bank_append_batch(CAST(\'[{"expected": '
        '{"acc-z": 0}, "events": [{"stream_id": "acc-z", "event_id": '
        '"00000000-0000-4000-8000-000000000001", "type": "AccountClosed", "payload": {}, '
        '"metadata": {}, "schema_version": 2}], "transfers": []}]\' AS jsonb))',
    )

    assert fill_more == [("appended", head + 1)]
    assert bank(pg_url, "verify").returncode == 0


def test_export_to_standard_output_streams_json_lines(sqlite_url: str) -> None:
    head = fill_store(sqlite_url)

    exported = bank(sqlite_url, "export", "-")

    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == head
    assert f"exporting: {head} events" in exported.stderr


def test_import_refuses_a_store_that_already_has_events(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    fill_store(sqlite_url)
    fill_store(pg_url)
    file = tmp_path / "export.jsonl"
    bank(sqlite_url, "export", str(file))

    refused = bank(pg_url, "import", str(file))

    assert refused.returncode == 1
    assert "already holds 11 events" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_import_names_the_first_broken_line_and_leaves_the_store_empty(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    fill_store(sqlite_url)
    file = tmp_path / "export.jsonl"
    bank(sqlite_url, "export", str(file))
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = lines[3].replace('"100.50"', '"900.50"')
    file.write_text("".join(lines), encoding="utf-8")

    refused = bank(pg_url, "import", str(file))

    assert refused.returncode == 1
    assert "line 4: position 4 does not verify" in refused.stderr
    assert _table(pg_url, "SELECT count(*) FROM events") == [(0,)]
    assert bank(pg_url, "digest").stdout == f"0:{'0' * 64}\n"


def test_import_names_a_missing_line(sqlite_url: str, pg_url: str, tmp_path: Path) -> None:
    fill_store(sqlite_url)
    file = tmp_path / "export.jsonl"
    bank(sqlite_url, "export", str(file))
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    file.write_text("".join(lines[:2] + lines[3:]), encoding="utf-8")

    refused = bank(pg_url, "import", str(file))

    assert refused.returncode == 1
    assert "line 3: position 4 does not verify" in refused.stderr


def test_bank_verify_exits_0_untouched_and_1_naming_the_tampered_position(
    sqlite_url: str,
) -> None:
    head = fill_store(sqlite_url)
    digest = bank(sqlite_url, "digest").stdout.strip()
    clean = bank(sqlite_url, "verify")
    assert clean.returncode == 0, clean.stderr
    assert (
        clean.stdout == f"{head} events verified; head {digest.split(':')[1]} at position {head}\n"
    )

    execute(sqlite_url, """UPDATE events SET payload = '{"amount": "1.00"}' WHERE position = 6""")
    tampered = bank(sqlite_url, "verify", "--digest", digest)

    assert tampered.returncode == 1
    assert "position 6 does not verify: payload changed" in tampered.stderr


TAMPERINGS = {
    "payload changed": ["""UPDATE events SET payload = '{"amount": "1.00"}' WHERE position = 3"""],
    "row missing": ["DELETE FROM events WHERE position = 3"],
    "order broken": [
        "UPDATE events SET position = -3 WHERE position = 3",
        "UPDATE events SET position = 3 WHERE position = 7",
        "UPDATE events SET position = 7 WHERE position = -3",
    ],
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_bank_verify_names_position_3_and_why_after_each_tampering(
    store_url: str, tampering: str
) -> None:
    fill_store(store_url)
    execute(store_url, *TAMPERINGS[tampering])

    result = bank(store_url, "verify")

    assert result.returncode == 1
    assert f"position 3 does not verify: {tampering}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bank_verify_refuses_a_malformed_digest(sqlite_url: str) -> None:
    result = bank(sqlite_url, "verify", "--digest", "12:nothex")

    assert result.returncode == 2
    assert "64 hex digits" in result.stderr
