"""`bank import`: load an export into an empty store, verifying the chain line by line.

Positions, event ids, versions, recorded times and hashes are kept exactly; each line's hash is
recomputed from the line before it, and the first line that does not verify stops the import with
its line number. Everything is inserted in one transaction, so a refused import leaves the store
empty. Transfers rows come along from the TransferSent lines and personal-data keys (still
wrapped) from the AccountOpened lines; idempotency records and snapshots do not exist in an export
(see export.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kernel.chain import GENESIS, canonical_json, parse_json
from write_side.audit.chain_rows import ChainRow
from write_side.store.schema import events, personal_keys, transfers

CHUNK = 1000


class ImportRefused(Exception):
    """The store is not empty, or a line of the file is malformed or breaks the chain."""


_INSERT_EVENTS = (
    "INSERT INTO events (position, stream_id, version, event_id, type, payload, metadata, "
    "schema_version, recorded_at, hash) VALUES (:position, :stream_id, :version, :event_id, "
    ":type, {payload}, {metadata}, :schema_version, :recorded_at, :hash)"
)


def _insert_events(postgres: bool) -> sa.TextClause:
    """Payload and metadata go in as their canonical JSON text (jsonb parses it on PostgreSQL),
    so numbers stay exact."""
    if postgres:
        sql = _INSERT_EVENTS.format(
            payload="CAST(:payload AS jsonb)", metadata="CAST(:metadata AS jsonb)"
        )
    else:
        sql = _INSERT_EVENTS.format(payload=":payload", metadata=":metadata")
    return sa.text(sql).bindparams(
        sa.bindparam("event_id", type_=sa.Uuid()),
        sa.bindparam("recorded_at", type_=sa.DateTime(timezone=True)),
    )


def _parse(number: int, line: str) -> tuple[ChainRow, dict[str, Any] | None, dict[str, Any] | None]:
    try:
        raw = parse_json(line)
        row = ChainRow(
            position=int(raw["position"]),
            event_id=uuid.UUID(raw["event_id"]),
            stream_id=str(raw["stream_id"]),
            version=int(raw["version"]),
            type=str(raw["type"]),
            schema_version=int(raw["schema_version"]),
            recorded_at=datetime.fromisoformat(raw["recorded_at"]),
            metadata_json=canonical_json(raw["metadata"]),
            payload_json=canonical_json(raw["payload"]),
            hash=str(raw["hash"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ImportRefused(f"line {number}: not an exported event ({exc})") from None
    transfer, key = raw.get("transfer"), raw.get("personal_key")
    return (
        row,
        transfer if isinstance(transfer, dict) else None,
        _key_values(number, row.stream_id, key) if isinstance(key, dict) else None,
    )


def _key_values(number: int, stream_id: str, key: dict[str, Any]) -> dict[str, Any]:
    try:
        wrapped = key["wrapped_key"]
        erased_at = key["erased_at"]
        return {
            "stream_id": stream_id,
            "wrapped_key": base64.b64decode(wrapped, validate=True) if wrapped else None,
            "created_at": datetime.fromisoformat(key["created_at"]),
            "erased_at": datetime.fromisoformat(erased_at) if erased_at else None,
        }
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ImportRefused(f"line {number}: not an exported personal key ({exc})") from None


def _transfer_values(number: int, transfer: dict[str, Any]) -> dict[str, Any]:
    try:
        return {
            "transfer_id": str(transfer["transfer_id"]),
            "fingerprint": str(transfer["fingerprint"]),
            "result": json.loads(canonical_json(transfer["result"])),
            "last_position": int(transfer["last_position"]),
            "recorded_at": datetime.fromisoformat(transfer["recorded_at"]),
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ImportRefused(f"line {number}: not an exported transfer ({exc})") from None


def import_events(
    engine: sa.Engine, lines: Iterable[str], on_chunk: Callable[[int, int], None] | None = None
) -> int:
    """Load `lines` (an export) into the empty store behind `engine`; returns how many events."""
    postgres = engine.dialect.name == "postgresql"
    insert = _insert_events(postgres)
    previous, last, count = GENESIS, 0, 0
    rows: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    keys: list[dict[str, Any]] = []
    with engine.begin() as conn:
        held = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        if held:
            raise ImportRefused(f"the store already holds {held} events: import needs an empty one")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row, transfer, key = _parse(number, line)
            if row.position <= last:
                raise ImportRefused(
                    f"line {number}: order broken: position {row.position} after {last}"
                )
            if row.link(previous) != row.hash:
                raise ImportRefused(
                    f"line {number}: position {row.position} does not verify: its contents or "
                    "hash changed, or the line before it is missing"
                )
            rows.append(_values(row))
            if transfer is not None:
                claims.append(_transfer_values(number, transfer))
            if key is not None:
                keys.append(key)
            previous, last, count = row.hash, row.position, count + 1
            if len(rows) >= CHUNK:
                _flush(conn, insert, rows, claims, on_chunk, last)
        _flush(conn, insert, rows, claims, on_chunk, last)
        if keys:
            conn.execute(personal_keys.insert(), keys)
        if postgres and count:
            conn.execute(
                sa.text("SELECT setval(pg_get_serial_sequence('events', 'position'), :last)"),
                {"last": last},
            )
    return count


def _values(row: ChainRow) -> dict[str, Any]:
    return {
        "position": row.position,
        "stream_id": row.stream_id,
        "version": row.version,
        "event_id": row.event_id,
        "type": row.type,
        "payload": row.payload_json,
        "metadata": row.metadata_json,
        "schema_version": row.schema_version,
        "recorded_at": row.recorded_at,
        "hash": row.hash,
    }


def _flush(
    conn: sa.Connection,
    insert: sa.TextClause,
    rows: list[dict[str, Any]],
    claims: list[dict[str, Any]],
    on_chunk: Callable[[int, int], None] | None,
    last: int,
) -> None:
    if rows:
        conn.execute(insert, rows)
        if on_chunk is not None:
            on_chunk(len(rows), last)
        rows.clear()
    if claims:
        conn.execute(transfers.insert(), claims)
        claims.clear()
