"""Appending on SQLite: one append, inside the write transaction that sqlite_writer.py holds.

That transaction begins with `BEGIN IMMEDIATE`, which takes the database's single write lock before
the version checks, so appends are serialised and positions become visible in commit order, as on
PostgreSQL; one append covers every stream it writes. Under that lock the append also extends the
hash chain (kernel/chain.py): it reads the head's position and hash, and numbers and hashes its
events itself; and it stores the personal-data keys of the accounts it opens, so a refused append
rolls them back with everything else.

A key rides on its account's first event: that event is inserted into the view `keyed_events`
(migration 0008), whose trigger stores the key and the event in one statement.

Everything here is synchronous: the writer runs a whole batch of appends on its own thread, with no
hop back to the event loop between statements while the write lock is held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from kernel.chain import GENESIS, canonical_json, event_hash
from kernel.events import NewEvent
from write_side.store.queries import command_query, transfer_query
from write_side.store.records import (
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    MultiAppendResult,
    TransferExists,
    TransferRecord,
)
from write_side.store.schema import commands, events, transfers


@dataclass(frozen=True, slots=True)
class SqliteAppend:
    """One append as EventStore.append_many received it; idempotency records recorded before
    `valid_after` have expired."""

    new_events: Sequence[tuple[str, NewEvent]]
    expected_versions: Mapping[str, int]
    command: CommandRecord | None
    claimed: Sequence[TransferRecord]
    valid_after: datetime
    new_keys: Mapping[str, bytes]


def append_in_transaction(conn: sa.Connection, append: SqliteAppend) -> MultiAppendResult:
    """Check and write `append` on `conn`, which holds the write lock in an open transaction;
    raises ConcurrencyError, DuplicateCommand or TransferExists (having written nothing) when
    refused."""
    now = datetime.now(UTC)
    new_events = append.new_events
    position, previous = _check(
        conn, append.expected_versions, append.command, append.claimed, append.valid_after
    )
    unkeyed = dict(append.new_keys)
    versions = dict(append.expected_versions)
    plain: list[dict[str, object]] = []
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
            plain.append(row)
        else:
            _insert_keyed(conn, {**row, "wrapped_key": wrapped_key})
    if plain:
        conn.execute(events.insert(), plain)
    if append.command is not None:
        first = new_events[0][0]
        _record_command(conn, append.command, first, versions[first], position, now)
    for transfer in append.claimed:
        conn.execute(
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


def _check(
    conn: sa.Connection,
    expected_versions: Mapping[str, int],
    command: CommandRecord | None,
    claimed: Sequence[TransferRecord],
    valid_after: datetime,
) -> tuple[int, str]:
    """The same checks, in the same order, as bank_append_batch() on PostgreSQL; returns the
    last event's position and hash (0 and the genesis hash in an empty store), which the append
    continues from, as AUTOINCREMENT would while no event is ever deleted."""
    if command is not None:
        query = command_query(command.client, command.idempotency_key, valid_after)
        existing = conn.execute(query).first()
        if existing is not None:
            raise DuplicateCommand(CommandRecord(*existing))
    for transfer in claimed:
        taken = conn.execute(transfer_query(transfer.transfer_id)).first()
        if taken is not None:
            raise TransferExists(TransferRecord(*taken))
    rows = conn.execute(_VERSIONS_AND_HEAD, {"streams": sorted(expected_versions)})
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


def _insert_keyed(conn: sa.Connection, row: dict[str, object]) -> None:
    try:
        conn.execute(keyed_events.insert(), row)
    except sa.exc.IntegrityError as exc:
        if FORGOTTEN in str(exc.orig):  # raised inside the transaction: it rolls back
            raise ConcurrencyError(str(row["stream_id"]), 0, 0) from None
        raise


def _record_command(
    conn: sa.Connection,
    command: CommandRecord,
    stream_id: str,
    last_version: int,
    position: int,
    now: datetime,
) -> None:
    # Only an expired record of this client's key can still be there (the check above ignored
    # it): the new command takes its place.
    conn.execute(
        commands.delete().where(
            commands.c.client == command.client,
            commands.c.idempotency_key == command.idempotency_key,
        )
    )
    conn.execute(
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
