"""Group commit: `bank_append_batch` appends many commands' events in one transaction.

The store-wide append lock is held until COMMIT, and PostgreSQL releases it only after the WAL
flush, so one append per transaction means one disk flush per command, one after another. This
function takes the lock once for a whole batch of appends (each with its own expected version and
idempotency record) and so shares one flush among them. Positions stay commit-ordered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_LOCK_KEY = 727_001  # the same lock as bank_append() in 0001

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
        v_key := v_append->>'command_key';
        IF v_key IS NOT NULL THEN
            -- Sees the rows of earlier items of this batch too: a key used twice is a duplicate.
            SELECT * INTO v_command FROM commands WHERE idempotency_key = v_key;
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
            INSERT INTO commands (idempotency_key, fingerprint, stream_id, last_version,
                                  last_position, result, recorded_at)
            VALUES (v_key, v_append->>'command_fingerprint', v_stream, v_current, v_position,
                    v_append->'command_result', clock_timestamp());
        END IF;
        RETURN QUERY SELECT v_index, 'appended'::text, v_current, v_position, NULL::text,
            NULL::jsonb;
    END LOOP;
END;
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_BATCH_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bank_append_batch(jsonb)")
