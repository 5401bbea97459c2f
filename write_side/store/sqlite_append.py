"""Appending on SQLite: a batch of appends, inside the write transaction that sqlite_writer.py holds.

That transaction begins with `BEGIN IMMEDIATE`, which takes the database's single write lock before
the version checks, so appends are serialised and positions become visible in commit order, as on
PostgreSQL; one append covers every stream it writes. Under that lock the appends also extend the
hash chain (kernel/chain.py): the batch reads the head's position and hash once, and numbers and
hashes its events itself; and they store the personal-data keys of the accounts they open, so a
refused append leaves none.

The batch is checked in memory: one query reads the versions of every stream it writes and the
chain's head, each append is checked (idempotency key, transfer ids, then versions: the order of
bank_append_batch() on PostgreSQL) against that state as the appends before it in the batch left
it, and only then is everything written, a few statements for the whole batch. Each statement
releases Python's GIL and must win it back from the event loop's thread, so the count of statements
per batch, not per append, is what keeps the write lock short.

The rows are written by sqlite_rows.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from write_side.store.sqlite_rows import BatchRows, write_rows

Outcome = MultiAppendResult | ConcurrencyError | DuplicateCommand | TransferExists
"""What one append of a batch comes to: its result, or the refusal that wrote nothing."""


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


@dataclass(slots=True)
class _Batch:
    """The store as the batch's appends so far leave it, and the rows they will write."""

    position: int
    previous: str
    versions: dict[str, int]
    now: datetime
    commands: dict[tuple[str, str], CommandRecord] = field(default_factory=dict)
    transfers: dict[str, TransferRecord] = field(default_factory=dict)
    rows: BatchRows = field(default_factory=BatchRows)


def append_batch(conn: sa.Connection, appends: Sequence[SqliteAppend]) -> list[Outcome]:
    """Check and write `appends`, in order, on `conn`, which holds the write lock in an open
    transaction. A refused append writes nothing and does not stop the others. A statement refused
    by SQLite (IntegrityError, DataError) is raised; the caller rolls back what the batch wrote."""
    batch = _read_state(conn, appends)
    outcomes = [_plan(conn, append, batch) for append in appends]
    write_rows(conn, batch.rows)
    return outcomes


_VERSIONS_AND_HEAD = sa.text(
    "SELECT NULL, position, hash FROM "
    "(SELECT position, hash FROM events ORDER BY position DESC LIMIT 1) "
    "UNION ALL "
    "SELECT stream_id, max(version), NULL FROM events WHERE stream_id IN :streams "
    "GROUP BY stream_id"
).bindparams(sa.bindparam("streams", expanding=True))
"""One statement for what the batch needs to know: each written stream's version and the chain's
head (the row whose first column is NULL; 0 and the genesis hash in an empty store, which the batch
continues from, as AUTOINCREMENT would while no event is ever deleted)."""


def _read_state(conn: sa.Connection, appends: Sequence[SqliteAppend]) -> _Batch:
    streams = sorted({stream for append in appends for stream in append.expected_versions})
    batch = _Batch(0, GENESIS, {}, datetime.now(UTC))
    for stream, number, hash_ in conn.execute(_VERSIONS_AND_HEAD, {"streams": streams}):
        if stream is None:
            batch.position, batch.previous = number, hash_ or GENESIS
        else:
            batch.versions[stream] = number
    return batch


def _plan(conn: sa.Connection, append: SqliteAppend, batch: _Batch) -> Outcome:
    """Check `append` against the batch's state; if it passes, number, hash and stage its rows."""
    command = append.command
    if command is not None:
        earlier = batch.commands.get((command.client, command.idempotency_key))
        if earlier is None:
            query = command_query(command.client, command.idempotency_key, append.valid_after)
            row = conn.execute(query).first()
            earlier = CommandRecord(*row) if row else None
        if earlier is not None:
            return DuplicateCommand(earlier)
    for transfer in append.claimed:
        taken = batch.transfers.get(transfer.transfer_id)
        if taken is None:
            row = conn.execute(transfer_query(transfer.transfer_id)).first()
            taken = TransferRecord(*row) if row else None
        if taken is not None:
            return TransferExists(taken)
    for stream in sorted(append.expected_versions):
        current = batch.versions.get(stream, 0)
        if current != append.expected_versions[stream]:
            return ConcurrencyError(stream, append.expected_versions[stream], current)
    _stage(append, batch)
    return MultiAppendResult(
        batch.position, {s: batch.versions[s] for s in append.expected_versions}
    )


def _stage(append: SqliteAppend, batch: _Batch) -> None:
    unkeyed = dict(append.new_keys)
    now = batch.now
    for stream, event in append.new_events:
        version = batch.versions.get(stream, 0) + 1
        batch.versions[stream] = version
        batch.position += 1
        batch.previous = event_hash(
            batch.previous,
            batch.position,
            event.event_id,
            stream,
            version,
            event.type,
            event.schema_version,
            now,
            canonical_json(event.metadata),
            canonical_json(event.payload),
        )
        row: dict[str, object] = {
            "position": batch.position,
            "hash": batch.previous,
            "stream_id": stream,
            "version": version,
            "event_id": event.event_id,
            "type": event.type,
            "payload": event.payload,
            "metadata": event.metadata,
            "schema_version": event.schema_version,
            "recorded_at": now,
        }
        wrapped_key = unkeyed.pop(stream, None)
        if wrapped_key is None:
            batch.rows.events.append(row)
        else:
            batch.rows.keyed_events.append({**row, "wrapped_key": wrapped_key})
    command = append.command
    if command is not None:
        first = append.new_events[0][0]
        record = CommandRecord(
            command.idempotency_key,
            command.fingerprint,
            first,
            batch.versions[first],
            batch.position,
            command.result,
            command.client,
        )
        batch.commands[(command.client, command.idempotency_key)] = record
        batch.rows.commands.append(
            {
                "client": record.client,
                "idempotency_key": record.idempotency_key,
                "fingerprint": record.fingerprint,
                "stream_id": record.stream_id,
                "last_version": record.last_version,
                "last_position": record.last_position,
                "result": record.result,
                "recorded_at": now,
            }
        )
    for transfer in append.claimed:
        claim = TransferRecord(
            transfer.transfer_id, transfer.fingerprint, transfer.result, batch.position
        )
        batch.transfers[transfer.transfer_id] = claim
        batch.rows.transfers.append(
            {
                "transfer_id": claim.transfer_id,
                "fingerprint": claim.fingerprint,
                "result": claim.result,
                "last_position": claim.last_position,
                "recorded_at": now,
            }
        )
