"""Multi-stream appends and ledger-wide transfer ids.

One append may now write events to several streams in one transaction (a transfer's two sides, an
atomic batch of commands), each stream checked against its own expected version, so no reader can
ever see one side without the other. `bank_append_batch` takes such appends (still many at once:
group commit) and the `transfers` table records each transfer id once, in the same transaction as
its events, with the first answer, so a retry is answered from it and a reused id is refused.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
ANY_CLIENT = "*"  # records.ANY_CLIENT, frozen here as migrations must be
APPEND_LOCK_KEY = 727_001  # the same lock as 0001, 0003 and 0004

APPEND_BATCH_FUNCTION = f"""
DROP FUNCTION IF EXISTS bank_append_batch(jsonb);
CREATE FUNCTION bank_append_batch(p_appends jsonb)
RETURNS TABLE (
    item integer,
    outcome text,
    conflict_stream text,
    current_version integer,
    last_position bigint,
    versions jsonb,
    stored_fingerprint text,
    stored_result jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    v_append jsonb;
    v_index integer := -1;
    v_client text;
    v_key text;
    v_stream text;
    v_expected integer;
    v_current integer;
    v_conflict boolean;
    v_versions jsonb;
    v_position bigint;
    v_event jsonb;
    v_transfer jsonb;
    v_command commands%ROWTYPE;
    v_existing transfers%ROWTYPE;
    v_first_stream text;
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    <<appends>>
    FOR v_append IN SELECT value FROM jsonb_array_elements(p_appends) LOOP
        v_index := v_index + 1;
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
                RETURN QUERY SELECT v_index, 'duplicate'::text, v_command.stream_id::text,
                    v_command.last_version, v_command.last_position,
                    jsonb_build_object(v_command.stream_id, v_command.last_version),
                    v_command.fingerprint::text, v_command.result;
                CONTINUE appends;
            END IF;
        END IF;
        FOR v_transfer IN SELECT value FROM jsonb_array_elements(v_append->'transfers') LOOP
            SELECT * INTO v_existing FROM transfers
             WHERE transfer_id = v_transfer->>'transfer_id';
            IF FOUND THEN
                RETURN QUERY SELECT v_index, 'transfer_exists'::text, v_existing.transfer_id::text,
                    NULL::integer, v_existing.last_position, NULL::jsonb,
                    v_existing.fingerprint::text, v_existing.result;
                CONTINUE appends;
            END IF;
        END LOOP;
        v_conflict := false;
        FOR v_stream, v_expected IN
            SELECT key, value::integer FROM jsonb_each_text(v_append->'expected') ORDER BY key
        LOOP
            SELECT coalesce(max(e.version), 0) INTO v_current
              FROM events e WHERE e.stream_id = v_stream;
            IF v_current <> v_expected THEN
                RETURN QUERY SELECT v_index, 'conflict'::text, v_stream, v_current,
                    NULL::bigint, NULL::jsonb, NULL::text, NULL::jsonb;
                CONTINUE appends;
            END IF;
        END LOOP;
        v_versions := v_append->'expected';
        v_first_stream := NULL;
        FOR v_event IN SELECT value FROM jsonb_array_elements(v_append->'events') LOOP
            v_stream := v_event->>'stream_id';
            v_first_stream := coalesce(v_first_stream, v_stream);
            v_current := (v_versions->>v_stream)::integer + 1;
            v_versions := jsonb_set(v_versions, ARRAY[v_stream], to_jsonb(v_current));
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
            VALUES (v_client, v_key, v_append->>'command_fingerprint', v_first_stream,
                    (v_versions->>v_first_stream)::integer, v_position,
                    v_append->'command_result', clock_timestamp());
        END IF;
        FOR v_transfer IN SELECT value FROM jsonb_array_elements(v_append->'transfers') LOOP
            INSERT INTO transfers (transfer_id, fingerprint, result, last_position, recorded_at)
            VALUES (v_transfer->>'transfer_id', v_transfer->>'fingerprint', v_transfer->'result',
                    v_position, clock_timestamp());
        END LOOP;
        RETURN QUERY SELECT v_index, 'appended'::text, NULL::text, NULL::integer, v_position,
            v_versions, NULL::text, NULL::jsonb;
    END LOOP;
END;
$$;
"""


def upgrade() -> None:
    op.create_table(
        "transfers",
        sa.Column("transfer_id", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_BATCH_FUNCTION)


def _sibling(filename: str) -> ModuleType:
    """An earlier revision's module, for the SQL it froze."""
    spec = importlib.util.spec_from_file_location(filename, Path(__file__).with_name(filename))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bank_append_batch(jsonb)")
        op.execute(_sibling("0004_idempotency_per_client.py").APPEND_BATCH_FUNCTION)
    op.drop_table("transfers")
