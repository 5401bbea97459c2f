"""The event store's SQL, built once: the statements and row conversions the store reuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.events import RecordedEvent
from write_side.store.records import ANY_CLIENT, CommandRecord, TransferRecord
from write_side.store.schema import commands, events, snapshots, transfers

EVENT_COLUMNS = (
    events.c.position,
    events.c.stream_id,
    events.c.version,
    events.c.event_id,
    events.c.type,
    events.c.payload,
    events.c.metadata,
    events.c.schema_version,
    events.c.recorded_at,
    events.c.hash,
)


def _replay_statement() -> sa.CompoundSelect[Any]:
    """Snapshot row (type NULL; only of a schema version the code can read) plus every event after
    it, ordered by version."""
    stream_id = sa.bindparam("stream_id", type_=sa.String)
    readable = snapshots.c.schema_version.between(
        sa.bindparam("oldest_schema_version", type_=sa.SmallInteger),
        sa.bindparam("schema_version", type_=sa.SmallInteger),
    )
    current = (
        sa.select(snapshots.c.version)
        .where(snapshots.c.stream_id == stream_id, readable)
        .scalar_subquery()
    )
    snapshot_part = sa.select(
        snapshots.c.version,
        sa.literal(None, sa.String).label("type"),
        sa.cast(snapshots.c.state, sa.Text).label("body"),
        snapshots.c.taken_at,
        snapshots.c.schema_version,
    ).where(snapshots.c.stream_id == stream_id, readable)
    events_part = sa.select(
        events.c.version,
        events.c.type,
        sa.cast(events.c.payload, sa.Text).label("body"),
        events.c.recorded_at,
        events.c.schema_version,
    ).where(events.c.stream_id == stream_id, events.c.version > sa.func.coalesce(current, 0))
    return sa.union_all(snapshot_part, events_part).order_by(sa.text("version"))


REPLAY = _replay_statement()


def as_utc(moment: datetime) -> datetime:
    # SQLite returns naive UTC; PostgreSQL answers in the session's TimeZone, which may not be UTC.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def recorded_event(row: Any) -> RecordedEvent:
    return RecordedEvent(
        position=row[0],
        stream_id=row[1],
        version=row[2],
        event_id=row[3],
        type=row[4],
        payload=row[5],
        metadata=row[6],
        schema_version=row[7],
        recorded_at=as_utc(row[8]),
        hash=row[9],
    )


async def current_version(conn: AsyncConnection, stream_id: str) -> int:
    query = sa.select(sa.func.coalesce(sa.func.max(events.c.version), 0)).where(
        events.c.stream_id == stream_id
    )
    return int((await conn.execute(query)).scalar_one())


def command_query(client: str, key: str, valid_after: datetime) -> sa.Select[Any]:
    """The live record of `client`'s `key`: one recorded before `valid_after` has expired (the
    sweep may not have purged it yet) and is ignored. Pre-0004 records (ANY_CLIENT) match anyone."""
    return sa.select(
        commands.c.idempotency_key,
        commands.c.fingerprint,
        commands.c.stream_id,
        commands.c.last_version,
        commands.c.last_position,
        commands.c.result,
        commands.c.client,
    ).where(
        commands.c.idempotency_key == key,
        commands.c.client.in_([client, ANY_CLIENT]),
        commands.c.recorded_at >= valid_after,
    )


def transfer_query(transfer_id: str) -> sa.Select[Any]:
    return sa.select(
        transfers.c.transfer_id,
        transfers.c.fingerprint,
        transfers.c.result,
        transfers.c.last_position,
    ).where(transfers.c.transfer_id == transfer_id)


async def find_command(
    conn: AsyncConnection, client: str, key: str, valid_after: datetime
) -> CommandRecord | None:
    row = (await conn.execute(command_query(client, key, valid_after))).first()
    return CommandRecord(*row) if row else None


async def find_transfer(conn: AsyncConnection, transfer_id: str) -> TransferRecord | None:
    row = (await conn.execute(transfer_query(transfer_id))).first()
    return TransferRecord(*row) if row else None
