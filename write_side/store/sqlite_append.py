"""Appending on SQLite: `BEGIN IMMEDIATE` takes the database's single write lock before the version
check, so appends are serialised and positions become visible in commit order, as on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.events import NewEvent
from write_side.store.queries import current_version, find_command
from write_side.store.records import (
    AppendResult,
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
)
from write_side.store.schema import commands, events


async def append_sqlite(
    engine: AsyncEngine,
    stream_id: str,
    new_events: Sequence[NewEvent],
    expected_version: int,
    command: CommandRecord | None,
    valid_after: datetime,
) -> AppendResult:
    """Append as EventStore.append does; idempotency records before `valid_after` have expired."""
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            if command is not None:
                existing = await find_command(
                    conn, command.client, command.idempotency_key, valid_after
                )
                if existing is not None:
                    raise DuplicateCommand(existing)
            current = await current_version(conn, stream_id)
            if current != expected_version:
                raise ConcurrencyError(stream_id, expected_version, current)
            position = 0
            for offset, event in enumerate(new_events, start=1):
                inserted = await conn.execute(
                    events.insert().returning(events.c.position),
                    {
                        "stream_id": stream_id,
                        "version": expected_version + offset,
                        "event_id": event.event_id,
                        "type": event.type,
                        "payload": event.payload,
                        "metadata": event.metadata,
                        "schema_version": event.schema_version,
                        "recorded_at": now,
                    },
                )
                position = inserted.scalar_one()
            last_version = expected_version + len(new_events)
            if command is not None:
                await _replace_expired_record(conn, command)
                await conn.execute(
                    commands.insert(),
                    {
                        "client": command.client,
                        "idempotency_key": command.idempotency_key,
                        "fingerprint": command.fingerprint,
                        "stream_id": stream_id,
                        "last_version": last_version,
                        "last_position": position,
                        "result": command.result,
                        "recorded_at": now,
                    },
                )
    return AppendResult(last_version=last_version, last_position=position)


async def _replace_expired_record(conn: AsyncConnection, command: CommandRecord) -> None:
    """Only an expired record of this client's key can still be there (the lookup above ignored
    it): the new command takes its place."""
    await conn.execute(
        commands.delete().where(
            commands.c.client == command.client,
            commands.c.idempotency_key == command.idempotency_key,
        )
    )
