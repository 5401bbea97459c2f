"""Tamper evidence: every event carries `hash`, a SHA-256 chain in position order.

`hash` covers the previous event's hash and the event's canonical encoding (kernel/chain.py), so
changing, deleting or reordering any stored event breaks the chain from that position on, which
`bank verify` reports. The chain is computed inside the append, under the store-wide lock that
already orders appends: in `bank_append_batch` on PostgreSQL (by `bank_event_hash`, the same
encoding in SQL), in the `BEGIN IMMEDIATE` transaction on SQLite (sqlite_append.py). The column
stays nullable (SQLite cannot add a NOT NULL column to filled rows without copying the table); a
NULL hash fails verification.

The upgrade computes the hashes of the events already stored. That is the one UPDATE of events
anywhere: the column is new, so the UPDATE fills a value that did not exist and changes nothing an
event said; it runs once, under the append lock, in position order. On PostgreSQL it rewrites
every row once (a large store may want a VACUUM afterwards).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

from kernel.chain import GENESIS, canonical_json_text, event_hash

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

APPEND_LOCK_KEY = 727_001  # the same lock as 0001, 0003, 0004 and 0005
ANY_CLIENT = "*"  # records.ANY_CLIENT, frozen here as migrations must be
BACKFILL_PAGE = 1000

EVENT_HASH_FUNCTION = r"""
CREATE FUNCTION bank_event_hash(
    p_previous text, p_position bigint, p_event_id uuid, p_stream_id text, p_version integer,
    p_type text, p_schema_version smallint, p_recorded_at timestamptz, p_metadata jsonb,
    p_payload jsonb
) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(concat_ws(E'\n',
        p_previous, p_position::text, p_event_id::text, p_stream_id, p_version::text, p_type,
        p_schema_version::text,
        to_char(p_recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        p_metadata::text, p_payload::text), 'UTF8')), 'hex')
$$;
"""

BACKFILL_POSTGRES = f"""
DO $$
DECLARE
    v_row record;
    v_previous text := '{GENESIS}';
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    FOR v_row IN SELECT * FROM events ORDER BY position LOOP
        v_previous := bank_event_hash(v_previous, v_row.position, v_row.event_id,
            v_row.stream_id, v_row.version, v_row.type, v_row.schema_version, v_row.recorded_at,
            v_row.metadata, v_row.payload);
        UPDATE events SET hash = v_previous WHERE position = v_row.position;
    END LOOP;
END;
$$;
"""

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
    v_previous text;
    v_now timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock({APPEND_LOCK_KEY});
    -- The head of the chain, read under the lock: every append of this call extends it.
    SELECT e.hash INTO v_previous FROM events e ORDER BY e.position DESC LIMIT 1;
    v_previous := coalesce(v_previous, '{GENESIS}');
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
            -- The position is drawn first, as the identity default would, because the hash
            -- covers it; the lock keeps positions in commit order.
            v_position := nextval('events_position_seq'::regclass);  -- the identity's sequence
            v_now := clock_timestamp();
            v_previous := bank_event_hash(v_previous, v_position, (v_event->>'event_id')::uuid,
                v_stream, v_current, v_event->>'type', (v_event->>'schema_version')::smallint,
                v_now, v_event->'metadata', v_event->'payload');
            INSERT INTO events (position, stream_id, version, event_id, type, payload, metadata,
                                schema_version, recorded_at, hash)
            VALUES (v_position, v_stream, v_current, (v_event->>'event_id')::uuid,
                    v_event->>'type', v_event->'payload', v_event->'metadata',
                    (v_event->>'schema_version')::smallint, v_now, v_previous);
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


def _backfill_sqlite() -> None:
    """The same walk in Python (SQLite has no SHA-256), a page of rows at a time."""
    bind = op.get_bind()
    page = sa.text(
        "SELECT position, event_id, stream_id, version, type, schema_version, recorded_at, "
        "metadata, payload FROM events WHERE position > :after ORDER BY position LIMIT :page"
    ).columns(event_id=sa.Uuid(), recorded_at=sa.DateTime())
    previous, after = GENESIS, 0
    while rows := bind.execute(page, {"after": after, "page": BACKFILL_PAGE}).all():
        for position, event_id, stream, version, kind, schema, moment, metadata, payload in rows:
            previous = event_hash(
                previous,
                position,
                event_id,
                stream,
                version,
                kind,
                schema,
                moment,
                canonical_json_text(metadata),
                canonical_json_text(payload),
            )
            bind.execute(
                sa.text("UPDATE events SET hash = :hash WHERE position = :position"),
                {"hash": previous, "position": position},
            )
        after = rows[-1][0]


def upgrade() -> None:
    op.add_column("events", sa.Column("hash", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(EVENT_HASH_FUNCTION)
        op.execute(APPEND_BATCH_FUNCTION)
        op.execute(BACKFILL_POSTGRES)
    else:
        _backfill_sqlite()


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
        op.execute(_sibling("0005_multi_stream_appends.py").APPEND_BATCH_FUNCTION)
        op.execute("DROP FUNCTION IF EXISTS bank_event_hash")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("hash")
