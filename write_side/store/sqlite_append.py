"""Appending on SQLite: `BEGIN IMMEDIATE` takes the database's single write lock before the version
checks, so appends are serialised and positions become visible in commit order, as on PostgreSQL;
one transaction covers every stream an append writes. Under that lock the append also extends the
hash chain (kernel/chain.py): it reads the head's position and hash, and numbers and hashes its
events itself; and it stores the personal-data keys of the accounts it opens, so a refused append
rolls them back with everything else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert
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
from write_side.store.schema import commands, events, personal_keys, transfers


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
            if new_keys:
                await _store_keys(conn, new_keys, now)
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
                await conn.execute(
                    events.insert(),
                    {
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
                    },
                )
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


_insert_key = insert(personal_keys)
_STORE_KEY = _insert_key.on_conflict_do_update(
    index_elements=[personal_keys.c.stream_id],
    set_={
        "wrapped_key": _insert_key.excluded.wrapped_key,
        "created_at": _insert_key.excluded.created_at,
    },
    where=personal_keys.c.wrapped_key.is_not(None),
)
"""Built once, so SQLAlchemy compiles it once (a statement built per call was compiled per call:
a quarter of a millisecond inside the write lock)."""


async def _store_keys(conn: AsyncConnection, new_keys: Mapping[str, bytes], now: datetime) -> None:
    """The keys of the accounts being opened, as bank_append_batch() stores them: the checks proved
    their streams empty, so a live key already there belongs to no event (one left by an opening
    that failed before migration 0008) and is replaced; a tombstone (a forgotten account) is not,
    and refuses the append (raised inside the transaction, so it rolls back)."""
    for stream, wrapped in new_keys.items():
        row = {"stream_id": stream, "wrapped_key": wrapped, "created_at": now}
        if (await conn.execute(_STORE_KEY, row)).rowcount != 1:
            raise ConcurrencyError(stream, 0, 0)


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
