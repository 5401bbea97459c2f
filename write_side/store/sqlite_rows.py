"""The rows a batch of SQLite appends writes, in a few statements for the whole batch.

A key rides on its account's first event: that event is inserted into the view `keyed_events`
(migration 0008), whose trigger stores the key and the event in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from write_side.store.records import ConcurrencyError
from write_side.store.schema import commands, events, transfers

Row = dict[str, object]


@dataclass(slots=True)
class BatchRows:
    events: list[Row] = field(default_factory=list)
    """Events of streams that already have their key (or need none)."""
    keyed_events: list[Row] = field(default_factory=list)
    """An opening's first event, with its `wrapped_key`."""
    commands: list[Row] = field(default_factory=list)
    transfers: list[Row] = field(default_factory=list)


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

_DROP_EXPIRED_COMMAND = commands.delete().where(
    commands.c.client == sa.bindparam("client"),
    commands.c.idempotency_key == sa.bindparam("idempotency_key"),
)


def write_rows(conn: sa.Connection, rows: BatchRows) -> None:
    """Raises AccountForgotten, or SQLite's refusal of a row: the caller rolls the batch back."""
    if rows.events:
        conn.execute(events.insert(), rows.events)
    for row in rows.keyed_events:
        try:
            conn.execute(keyed_events.insert(), row)
        except sa.exc.IntegrityError as exc:
            if FORGOTTEN in str(exc.orig):
                raise AccountForgotten(str(row["stream_id"])) from None
            raise
    if rows.commands:
        # Only an expired record of a client's key can still be there (the check ignored it):
        # the new command takes its place.
        keys = [
            {"client": row["client"], "idempotency_key": row["idempotency_key"]}
            for row in rows.commands
        ]
        conn.execute(_DROP_EXPIRED_COMMAND, keys)
        conn.execute(commands.insert(), rows.commands)
    if rows.transfers:
        conn.execute(transfers.insert(), rows.transfers)


class AccountForgotten(Exception):
    """An append would key an account whose key `bank forget` destroyed: its opening lost to a
    forgotten account of the same id (refused as a version conflict)."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"account {stream_id!r} was forgotten")
        self.stream_id = stream_id

    def as_conflict(self) -> ConcurrencyError:
        return ConcurrencyError(self.stream_id, 0, 0)
