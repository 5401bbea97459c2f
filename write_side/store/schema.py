"""The relational schema of the event store. Alembic migrations create it; this module describes it
for queries. Events are only ever inserted: nothing in the code updates or deletes them. Command
(idempotency) records expire: the worker's sweep deletes them after their retention."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite rowid alias needs INTEGER

events = sa.Table(
    "events",
    metadata,
    sa.Column("position", Position, sa.Identity(), primary_key=True),
    sa.Column("stream_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("schema_version", sa.SmallInteger, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    # The hash chain (kernel/chain.py, migration 0006); every append fills it.
    sa.Column("hash", sa.String(64)),
    sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    sqlite_autoincrement=True,
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("stream_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("state", Json, nullable=False),
    sa.Column("schema_version", sa.SmallInteger, nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("transfer_id", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("result", Json, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

commands = sa.Table(
    "commands",
    metadata,
    # Keys are per client (the API key that sent them); see records.CommandRecord.
    sa.Column("client", sa.String(64), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("stream_id", sa.String(64), nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False),
    sa.Column("result", Json, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_commands_recorded_at", "recorded_at"),  # the purge of expired records
)

personal_keys = sa.Table(
    "personal_keys",
    metadata,
    # One row per account whose personal data is sealed: its AES key, wrapped by the master key.
    # Forgetting the account sets `wrapped_key` to NULL and `erased_at`: the row stays as a
    # tombstone, so no new key can ever be made for it (kernel/personal_data.py).
    sa.Column("stream_id", sa.String(64), primary_key=True),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
)
