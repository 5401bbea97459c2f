"""Appending on SQLite: `BEGIN IMMEDIATE` takes the database's single write lock before the version
checks, so appends are serialised and positions become visible in commit order, as on PostgreSQL;
one transaction covers every stream an append writes. Under that lock the append also extends the
hash chain (kernel/chain.py): it reads the head's position and hash, and numbers and hashes its
events itself; and it stores the personal-data keys of the accounts it opens, so a refused append
rolls them back with everything else.

A key rides on its account's first event: that event is inserted into the view `keyed_events`
(migration 0008), whose trigger stores the key and the event in one statement. A statement of its
own would cost little in SQLite, but each statement is a hop to aiosqlite's thread and back
through the event loop while the write lock is held, and every append waits for that lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.chain import GENESIS, canonical_json, event_hash
from kernel.events import NewEvent
from write_side.store.queries import find_command, find_transfer
from write_side.store.records import (
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    MultiAppendResult,
    TransferExists,
    TransferRecord,
)
from write_side.store.schema import commands, events, transfers


async def append_sqlite(
    engine: AsyncEngine,
    new_events: Sequence[tuple[str, NewEvent]],
    expected_versions: Mapping[str, int],
    command: CommandRecord | None,
    claimed: Sequence[TransferRecord],
    valid_after: datetime,
    *,
    new_keys: Mapping[str, bytes],
) -> MultiAppendResult:
    """Append as EventStore.append_many does; idempotency records before `valid_after` have
    expired."""
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            position, previous = await _check(
                conn, expected_versions, command, claimed, valid_after
            )
            unkeyed = dict(new_keys)
            versions = dict(expected_versions)
            for stream, event in new_events:
                versions[stream] += 1
                position += 1
                previous = event_hash(
                    previous,
                    position,
                    event.event_id,
                    stream,
                    versions[stream],
                    event.type,
                    event.schema_version,
                    now,
                    canonical_json(event.metadata),
                    canonical_json(event.payload),
                )
                row = {
                    "position": position,
                    "hash": previous,
                    "stream_id": stream,
                    "version": versions[stream],
                    "event_id": event.event_id,
                    "type": event.type,
                    "payload": event.payload,
                    "metadata": event.metadata,
                    "schema_version": event.schema_version,
                    "recorded_at": now,
                }
                wrapped_key = unkeyed.pop(stream, None)
                if wrapped_key is None:
                    await conn.execute(events.insert(), row)
                else:
                    await _insert_keyed(conn, {**row, "wrapped_key": wrapped_key})
            if command is not None:
                first = new_events[0][0]
                await _record_command(conn, command, first, versions[first], position, now)
            for transfer in claimed:
                await conn.execute(
                    transfers.insert(),
                    {
                        "transfer_id": transfer.transfer_id,
                        "fingerprint": transfer.fingerprint,
                        "result": transfer.result,
                        "last_position": position,
                        "recorded_at": now,
                    },
                )
    return MultiAppendResult(position, versions)


_VERSIONS_AND_HEAD = sa.text(
    "SELECT NULL, position, hash FROM "
    "(SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) "
    "UNION ALL "
    "SELECT stream_id, max(version), NULL FROM events WHERE stream_id IN :streams "
    "GROUP BY stream_id"
).bindparams(sa.bindparam("streams", expanding=True))
"""One round trip for what the append needs to know: each written stream's version and the
chain's head (the row whose first column is NULL)."""


async def _check(
    conn: AsyncConnection,
    expected_versions: Mapping[str, int],
    command: CommandRecord | None,
    claimed: Sequence[TransferRecord],
    valid_after: datetime,
) -> tuple[int, str]:
    """The same checks, in the same order, as bank_append_batch() on PostgreSQL; returns the
    last event's position and hash (0 and the genesis hash in an empty store), which the append
    continues from, as AUTOINCREMENT would while no event is ever deleted."""
    if command is not None:
        existing = await find_command(conn, command.client, command.idempotency_key, valid_after)
        if existing is not None:
            raise DuplicateCommand(existing)
    for transfer in claimed:
        taken = await find_transfer(conn, transfer.transfer_id)
        if taken is not None:
            raise TransferExists(taken)
    rows = await conn.execute(_VERSIONS_AND_HEAD, {"streams": sorted(expected_versions)})
    current: dict[str, int] = {}
    position, previous = 0, GENESIS
    for stream, number, hash_ in rows:
        if stream is None:
            position, previous = number, hash_ or GENESIS
        else:
            current[stream] = number
    for stream in sorted(expected_versions):
        if current.get(stream, 0) != expected_versions[stream]:
            raise ConcurrencyError(stream, expected_versions[stream], current.get(stream, 0))
    return position, previous


keyed_events = sa.table(
    "keyed_events",
    *(sa.column(column.name, column.type) for column in events.c),
    sa.column("wrapped_key", sa.LargeBinary),
)
"""A view over nothing (migration 0008): an insert stores the event in `events` and its account's
key in `personal_keys`, replacing a live key that no event uses (one left by an opening that failed
before 0008: the checks proved the stream empty) and refusing a tombstone (a forgotten account)."""

FORGOTTEN = "bank: the account was forgotten"
"""The trigger's refusal of a tombstoned account (frozen in migration 0008)."""


async def _insert_keyed(conn: AsyncConnection, row: dict[str, object]) -> None:
    try:
        await conn.execute(keyed_events.insert(), row)
    except sa.exc.IntegrityError as exc:
        if FORGOTTEN in str(exc.orig):  # raised inside the transaction: it rolls back
            raise ConcurrencyError(str(row["stream_id"]), 0, 0) from None
        raise


async def _record_command(
    conn: AsyncConnection,
    command: CommandRecord,
    stream_id: str,
    last_version: int,
    position: int,
    now: datetime,
) -> None:
    # Only an expired record of this client's key can still be there (the check above ignored
    # it): the new command takes its place.
    await conn.execute(
        commands.delete().where(
            commands.c.client == command.client,
            commands.c.idempotency_key == command.idempotency_key,
        )
    )
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
