"""The event store: append with an expected version, read a stream, read everything after a position.

Global order: `position` must become visible in commit order, or a subscriber that checkpoints 11
skips 10 forever. Every append therefore takes one store-wide lock before it inserts and holds it to
commit. On PostgreSQL the lock, the version checks, the inserts, the idempotency records and the commit
happen inside one PL/pgSQL call in autocommit mode: one round trip, no lock held across the network;
concurrent appends of a process share that call and its disk flush (group_commit.py).
On SQLite `BEGIN IMMEDIATE` takes the database's single write lock, which serialises the same way,
and each process's appends share one writer thread and its transactions (sqlite_writer.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.events import NewEvent, RecordedEvent
from write_side.store.group_commit import AppendBatcher
from write_side.store.queries import (
    EVENT_COLUMNS,
    REPLAY,
    as_utc,
    current_version,
    find_command,
    find_transfer,
    recorded_event,
)
from write_side.store.records import (
    AppendResult,
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    MultiAppendResult,
    Snapshot,
    StoredPayload,
    TransferExists,
    TransferRecord,
)
from write_side.store.retention import DEFAULT_RETENTION, valid_after
from write_side.store.schema import events, snapshots
from write_side.store.sqlite_append import SqliteAppend
from write_side.store.sqlite_writer import SqliteWriter


class EventStore:
    """One store over one AsyncEngine. Safe to share between concurrent tasks of one event loop.

    Idempotency records older than `idempotency_retention` are treated as absent (retention.py).
    """

    def __init__(
        self, engine: AsyncEngine, idempotency_retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self._engine = engine
        self._retention = idempotency_retention
        self._postgres = engine.dialect.name == "postgresql"
        self._batcher = AppendBatcher(engine)
        self._writer = None if self._postgres else SqliteWriter(engine)
        # Reads are single statements: no transaction needed (the PostgreSQL engine is already
        # in autocommit; on SQLite this skips BEGIN, see database.py).
        self._autocommit = (
            engine if self._postgres else engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # --- appending ------------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        new_events: Sequence[NewEvent],
        expected_version: int,
        command: CommandRecord | None = None,
        new_keys: Mapping[str, bytes] | None = None,
    ) -> AppendResult:
        """Append `new_events` after `expected_version` or raise ConcurrencyError.

        With `command`, its idempotency record is written in the same transaction; if its client
        already holds a live record of its key, nothing is appended and DuplicateCommand carries
        the earlier record. `new_keys` as in append_many.
        """
        result = await self.append_many(
            [(stream_id, event) for event in new_events],
            {stream_id: expected_version},
            command,
            new_keys=new_keys,
        )
        return AppendResult(result.versions[stream_id], result.last_position)

    async def append_many(
        self,
        new_events: Sequence[tuple[str, NewEvent]],
        expected_versions: Mapping[str, int],
        command: CommandRecord | None = None,
        transfers: Sequence[TransferRecord] = (),
        new_keys: Mapping[str, bytes] | None = None,
    ) -> MultiAppendResult:
        """Append events to one or more streams in one transaction, all or nothing.

        `new_events` are (stream id, event) in the order they are to be numbered; every stream
        written must be in `expected_versions`, and each must still be at its expected version
        (else ConcurrencyError names the first that is not). Each of `transfers` claims its
        transfer id for the whole ledger: if one is taken, nothing is appended and TransferExists
        carries the first transfer's record. The events of one multi-event append share a `tx`
        id in their metadata, so projectors can keep a transaction whole.

        `new_keys` are the personal-data keys (stream id -> key wrapped by the master key) of
        the accounts this append opens: they are stored in its transaction, so a refused or failed
        append leaves none behind. Each must be for a stream this append begins (expected version
        0); a stream whose key was destroyed (`bank forget`) is refused with ConcurrencyError.
        """
        if not new_events:
            raise ValueError("append needs at least one event")
        unknown = {stream for stream, _ in new_events} - set(expected_versions)
        if unknown:
            raise ValueError(f"no expected version for {sorted(unknown)}")
        new_keys = dict(new_keys or {})
        written = {stream for stream, _ in new_events}
        if not written.issuperset(new_keys) or any(expected_versions[s] != 0 for s in new_keys):
            raise ValueError("a personal-data key is stored only with its stream's first events")
        if len(new_events) > 1:
            tx = uuid.uuid4().hex
            new_events = [
                (stream, dataclasses.replace(e, metadata={**e.metadata, "tx": tx}))
                for stream, e in new_events
            ]
        if self._writer is not None:
            return await self._writer.submit(
                SqliteAppend(
                    new_events,
                    expected_versions,
                    command,
                    transfers,
                    valid_after(self._retention),
                    new_keys,
                )
            )
        return await self._append_postgres(
            new_events, expected_versions, command, transfers, new_keys
        )

    async def _append_postgres(
        self,
        new_events: Sequence[tuple[str, NewEvent]],
        expected_versions: Mapping[str, int],
        command: CommandRecord | None,
        transfers: Sequence[TransferRecord],
        new_keys: Mapping[str, bytes],
    ) -> MultiAppendResult:
        append = {
            "expected": dict(expected_versions),
            "events": [
                {
                    "stream_id": stream,
                    "event_id": str(e.event_id),
                    "type": e.type,
                    "payload": e.payload,
                    "metadata": e.metadata,
                    "schema_version": e.schema_version,
                }
                for stream, e in new_events
            ],
            "command_client": command.client if command else None,
            "command_key": command.idempotency_key if command else None,
            "command_valid_after": valid_after(self._retention) if command else None,
            "command_fingerprint": command.fingerprint if command else None,
            "command_result": command.result if command else None,
            "transfers": [
                {"transfer_id": t.transfer_id, "fingerprint": t.fingerprint, "result": t.result}
                for t in transfers
            ],
            # bytes travel as base64 in JSON (msgspec); the function decodes them (0008)
            "keys": [{"stream_id": s, "wrapped_key": k} for s, k in new_keys.items()],
        }
        answer = await self._batcher.submit(append)
        if answer.outcome == "conflict":
            stream = answer.conflict_stream or ""
            current = answer.current_version or 0
            raise ConcurrencyError(stream, expected_versions.get(stream, 0), current)
        if answer.outcome == "transfer_exists":
            raise TransferExists(
                TransferRecord(
                    answer.conflict_stream or "",
                    answer.stored_fingerprint or "",
                    answer.stored_result or {},
                    answer.last_position or 0,
                )
            )
        if answer.outcome == "duplicate":
            assert command is not None
            # The earlier record's stream may differ from ours when racing attempts drew
            # different ids for a new account: read the record back.
            earlier = await self.find_command(command.client, command.idempotency_key)
            raise DuplicateCommand(
                earlier
                or CommandRecord(
                    command.idempotency_key,
                    answer.stored_fingerprint or "",
                    answer.conflict_stream or "",
                    answer.current_version or 0,
                    answer.last_position or 0,
                    answer.stored_result or {},
                    command.client,
                )
            )
        assert answer.last_position is not None
        assert answer.versions is not None
        return MultiAppendResult(answer.last_position, answer.versions)

    # --- reading --------------------------------------------------------------------------------

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        query = (
            sa.select(*EVENT_COLUMNS)
            .where(events.c.stream_id == stream_id, events.c.version > after_version)
            .order_by(events.c.version)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [recorded_event(row) for row in rows]

    async def read_after(self, position: int, limit: int = 1000) -> list[RecordedEvent]:
        """Events with a global position greater than `position`, in order, at most `limit`."""
        query = (
            sa.select(*EVENT_COLUMNS)
            .where(events.c.position > position)
            .order_by(events.c.position)
            .limit(limit)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [recorded_event(row) for row in rows]

    async def head_position(self) -> int:
        query = sa.select(sa.func.coalesce(sa.func.max(events.c.position), 0))
        async with self._autocommit.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def stream_version(self, stream_id: str) -> int:
        async with self._autocommit.connect() as conn:
            return await current_version(conn, stream_id)

    async def find_transfer(self, transfer_id: str) -> TransferRecord | None:
        """The record of a transfer id, if a transfer has claimed it (they never expire)."""
        async with self._autocommit.connect() as conn:
            return await find_transfer(conn, transfer_id)

    async def find_command(self, client: str, idempotency_key: str) -> CommandRecord | None:
        """`client`'s live record of `idempotency_key`; None when absent or expired."""
        async with self._autocommit.connect() as conn:
            return await find_command(conn, client, idempotency_key, valid_after(self._retention))

    async def load_for_replay(
        self, stream_id: str, snapshot_schema_versions: tuple[int, int]
    ) -> tuple[Snapshot | None, list[StoredPayload]]:
        """The stream's current snapshot (if its schema version is within the inclusive range
        `snapshot_schema_versions`) and every event after it as stored, in one round trip: the hot
        path of every command."""
        oldest, newest = snapshot_schema_versions
        params = {
            "stream_id": stream_id,
            "oldest_schema_version": oldest,
            "schema_version": newest,
        }
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(REPLAY, params)).all()
        snapshot = None
        tail: list[StoredPayload] = []
        for version, type_name, body, moment, schema_version in rows:
            if type_name is None:
                state = msgspec.json.decode(body)
                snapshot = Snapshot(stream_id, version, state, schema_version, as_utc(moment))
            else:
                tail.append(StoredPayload(type_name, body, schema_version))
        return snapshot, tail

    # --- snapshots ------------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep the latest snapshot per stream; an older one never replaces a newer one."""
        values = {
            "stream_id": snapshot.stream_id,
            "version": snapshot.version,
            "state": snapshot.state,
            "schema_version": snapshot.schema_version,
            "taken_at": snapshot.taken_at,
        }
        insert: Any
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(snapshots).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[snapshots.c.stream_id],
            set_={
                k: statement.excluded[k] for k in ("version", "state", "schema_version", "taken_at")
            },
            where=snapshots.c.version < statement.excluded.version,
        )
        async with self._autocommit.connect() as conn:
            await conn.execute(statement)
