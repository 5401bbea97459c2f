"""The event store: events, snapshots, idempotent commands, and the PostgreSQL append function.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")

# One store-wide transaction lock: positions become visible in commit order (see event_store.py).
APPEND_LOCK_KEY = 727_001

APPEND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION bank_append(
    p_stream_id text,
    p_expected_version integer,
    p_events jsonb,
    p_command_key text,
    p_command_fingerprint text,
    p_command_result jsonb
) RETURNS TABLE (
    outcome text,
    last_version integer,
    last_position bigint,
    stored_fingerprint text,
    stored_result jsonb
) LANGUAGE plpgsql AS $$
DECLARE
    v_current integer;
    v_position bigint;
    v_event jsonb;
    v_command commands%ROWTYPE;
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    IF p_command_key IS NOT NULL THEN
        SELECT * INTO v_command FROM commands WHERE idempotency_key = p_command_key;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate'::text, v_command.last_version, v_command.last_position,
                v_command.fingerprint::text, v_command.result;
            RETURN;
        END IF;
    END IF;
    SELECT coalesce(max(e.version), 0) INTO v_current FROM events e WHERE e.stream_id = p_stream_id;
    IF v_current <> p_expected_version THEN
        RETURN QUERY SELECT 'conflict'::text, v_current, NULL::bigint, NULL::text, NULL::jsonb;
        RETURN;
    END IF;
    FOR v_event IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        v_current := v_current + 1;
        INSERT INTO events (stream_id, version, event_id, type, payload, metadata, schema_version, recorded_at)
        VALUES (p_stream_id, v_current, (v_event->>'event_id')::uuid, v_event->>'type',
                v_event->'payload', v_event->'metadata', (v_event->>'schema_version')::smallint,
                clock_timestamp())
        RETURNING events.position INTO v_position;
    END LOOP;
    IF p_command_key IS NOT NULL THEN
        INSERT INTO commands (idempotency_key, fingerprint, stream_id, last_version, last_position,
                              result, recorded_at)
        VALUES (p_command_key, p_command_fingerprint, p_stream_id, v_current, v_position,
                p_command_result, clock_timestamp());
    END IF;
    RETURN QUERY SELECT 'appended'::text, v_current, v_position, NULL::text, NULL::jsonb;
END;
$$;
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "events",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            *([sa.Identity()] if postgres else []),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("schema_version", sa.SmallInteger, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "snapshots",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", Json, nullable=False),
        sa.Column("schema_version", sa.SmallInteger, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "commands",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("stream_id", sa.String(64), nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.Column("last_position", sa.BigInteger, nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    if postgres:
        op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bank_append(text, integer, jsonb, text, text, jsonb)")
    op.drop_table("commands")
    op.drop_table("snapshots")
    op.drop_table("events")
