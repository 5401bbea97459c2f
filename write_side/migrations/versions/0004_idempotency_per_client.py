"""Idempotency keys belong to the client that sent them, and expire.

The `commands` table is keyed by (client, idempotency_key), where the client is the stable id of
the API key (`anonymous` with auth off), and gets an index on `recorded_at` for the purge of
expired records. Rows written before this revision get the client `*`: they answer every client,
as they did, until they expire. `bank_append_batch` checks the caller's live record only and
replaces an expired one. `bank_append` (0001), which nothing calls any more and which would check
keys globally, is dropped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
ANY_CLIENT = "*"  # records.ANY_CLIENT, frozen here as migrations must be
APPEND_LOCK_KEY = 727_001  # the same lock as 0001 and 0003

APPEND_BATCH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION bank_append_batch(p_appends jsonb)
RETURNS TABLE (
    item integer,
    outcome text,
    last_version integer,
    last_position bigint,
    stored_fingerprint text,
    stored_result jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    v_append jsonb;
    v_index integer := -1;
    v_stream text;
    v_client text;
    v_key text;
    v_current integer;
    v_position bigint;
    v_event jsonb;
    v_command commands%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    FOR v_append IN SELECT value FROM jsonb_array_elements(p_appends) LOOP
        v_index := v_index + 1;
        v_stream := v_append->>'stream_id';
        v_client := v_append->>'command_client';
        v_key := v_append->>'command_key';
        IF v_key IS NOT NULL THEN
            -- Sees the rows of earlier items of this batch too: a key used twice is a duplicate.
            -- An expired record (older than command_valid_after) no longer counts.
            SELECT * INTO v_command FROM commands
             WHERE idempotency_key = v_key AND client IN (v_client, '{ANY_CLIENT}')
               AND recorded_at >= (v_append->>'command_valid_after')::timestamptz
             LIMIT 1;
            IF FOUND THEN
                RETURN QUERY SELECT v_index, 'duplicate'::text, v_command.last_version,
                    v_command.last_position, v_command.fingerprint::text, v_command.result;
                CONTINUE;
            END IF;
        END IF;
        SELECT coalesce(max(e.version), 0) INTO v_current FROM events e WHERE e.stream_id = v_stream;
        IF v_current <> (v_append->>'expected_version')::integer THEN
            RETURN QUERY SELECT v_index, 'conflict'::text, v_current, NULL::bigint, NULL::text,
                NULL::jsonb;
            CONTINUE;
        END IF;
        FOR v_event IN SELECT value FROM jsonb_array_elements(v_append->'events') LOOP
            v_current := v_current + 1;
            INSERT INTO events (stream_id, version, event_id, type, payload, metadata,
                                schema_version, recorded_at)
            VALUES (v_stream, v_current, (v_event->>'event_id')::uuid, v_event->>'type',
                    v_event->'payload', v_event->'metadata',
                    (v_event->>'schema_version')::smallint, clock_timestamp())
            RETURNING events.position INTO v_position;
        END LOOP;
        IF v_key IS NOT NULL THEN
            -- Only an expired record of this client's key can be left: the new command replaces it.
            DELETE FROM commands WHERE client = v_client AND idempotency_key = v_key;
            INSERT INTO commands (client, idempotency_key, fingerprint, stream_id, last_version,
                                  last_position, result, recorded_at)
            VALUES (v_client, v_key, v_append->>'command_fingerprint', v_stream, v_current,
                    v_position, v_append->'command_result', clock_timestamp());
        END IF;
        RETURN QUERY SELECT v_index, 'appended'::text, v_current, v_position, NULL::text,
            NULL::jsonb;
    END LOOP;
END;
$$;
"""

KEEP_NEWEST_PER_KEY = sa.text(
    "DELETE FROM commands WHERE EXISTS (SELECT 1 FROM commands AS newer"
    " WHERE newer.idempotency_key = commands.idempotency_key"
    " AND (newer.recorded_at > commands.recorded_at"
    " OR (newer.recorded_at = commands.recorded_at AND newer.client > commands.client)))"
)


def _commands_table(name: str, *, with_client: bool) -> None:
    op.create_table(
        name,
        *([sa.Column("client", sa.String(64), primary_key=True)] if with_client else []),
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


COLUMNS = (
    "idempotency_key, fingerprint, stream_id, last_version, last_position, result, recorded_at"
)


def _sqlite_rebuild(*, with_client: bool) -> None:
    """SQLite cannot change a primary key in place: copy into a new table and swap."""
    _commands_table("commands_new", with_client=with_client)
    source = f"'{ANY_CLIENT}', {COLUMNS}" if with_client else COLUMNS
    target = f"client, {COLUMNS}" if with_client else COLUMNS
    op.execute(f"INSERT INTO commands_new ({target}) SELECT {source} FROM commands")
    op.drop_table("commands")
    op.rename_table("commands_new", "commands")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.add_column(
            "commands",
            sa.Column("client", sa.String(64), nullable=False, server_default=ANY_CLIENT),
        )
        op.alter_column("commands", "client", server_default=None)
        op.drop_constraint("commands_pkey", "commands", type_="primary")
        op.create_primary_key("commands_pkey", "commands", ["client", "idempotency_key"])
        op.execute("DROP FUNCTION IF EXISTS bank_append(text, integer, jsonb, text, text, jsonb)")
        op.execute(APPEND_BATCH_FUNCTION)
    else:
        _sqlite_rebuild(with_client=True)
    op.create_index("ix_commands_recorded_at", "commands", ["recorded_at"])


def _sibling(filename: str) -> ModuleType:
    """An earlier revision's module, for the SQL it froze."""
    spec = importlib.util.spec_from_file_location(filename, Path(__file__).with_name(filename))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    """Back to one record per key: the newest record of each key is kept."""
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_commands_recorded_at", table_name="commands")
    op.execute(KEEP_NEWEST_PER_KEY)
    if postgres:
        op.drop_constraint("commands_pkey", "commands", type_="primary")
        op.create_primary_key("commands_pkey", "commands", ["idempotency_key"])
        op.drop_column("commands", "client")
        op.execute(_sibling("0003_group_commit.py").APPEND_BATCH_FUNCTION)
        op.execute(_sibling("0001_event_store.py").APPEND_FUNCTION)
    else:
        _sqlite_rebuild(with_client=False)
