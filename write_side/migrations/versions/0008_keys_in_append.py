"""Personal-data keys are written by the append that opens their account.

Until now a key was made by `bank_create_personal_keys` in a transaction of its own before the
append: one more round trip per opening (the whole cost of encryption on the command path), and a
key left behind whenever the append was then refused. `bank_append_batch` now takes each append's
new keys (`keys`: stream id and base64 wrapped key) and inserts them in the append's transaction,
after its checks: an append refused or failed leaves no key, and group commit batches key rows
with their events. An account whose key row is a tombstone (forgotten) is refused as a conflict.

The function below is 0006's, extended; `bank_create_personal_keys` is dropped.

On SQLite the append (write_side/store/sqlite_append.py) inserts an account's first event into the
view `keyed_events`, with the key: its trigger stores both in one statement (the same checks and
replacement as the function), so the key adds no statement inside the write lock.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APPEND_LOCK_KEY = 727_001  # the same lock as 0001, 0003, 0004, 0005 and 0006
ANY_CLIENT = "*"  # records.ANY_CLIENT, frozen here as migrations must be
GENESIS = "0" * 64  # kernel.chain.GENESIS, frozen here as migrations must be

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
    v_new_key jsonb;
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
        IF jsonb_array_length(coalesce(v_append->'keys', '[]'::jsonb)) > 0 THEN
            -- A forgotten account (its key row is a tombstone) never gets a key again: refused
            -- as a conflict before anything is written, like an opening that lost a race.
            -- One primary-key lookup per key (a join lets the planner scan the whole table).
            FOR v_new_key IN SELECT value FROM jsonb_array_elements(v_append->'keys') LOOP
                v_stream := v_new_key->>'stream_id';
                PERFORM FROM personal_keys k
                  WHERE k.stream_id = v_stream AND k.wrapped_key IS NULL;
                IF FOUND THEN
                    RETURN QUERY SELECT v_index, 'conflict'::text, v_stream,
                        (v_append->'expected'->>v_stream)::integer,
                        NULL::bigint, NULL::jsonb, NULL::text, NULL::jsonb;
                    CONTINUE appends;
                END IF;
            END LOOP;
            -- The keys of the accounts this append opens, in its transaction: no round trip of
            -- their own, and a refused or failed append leaves none behind. The checks above
            -- proved those streams empty (EventStore sends keys only with a stream's first
            -- events), so a live key already there belongs to no event (one left by an opening
            -- that failed before 0008): the new key replaces it.
            INSERT INTO personal_keys (stream_id, wrapped_key, created_at)
            SELECT n.value->>'stream_id', decode(n.value->>'wrapped_key', 'base64'),
                   clock_timestamp()
              FROM jsonb_array_elements(v_append->'keys') AS n(value)
            ON CONFLICT (stream_id) DO UPDATE
               SET wrapped_key = EXCLUDED.wrapped_key, created_at = EXCLUDED.created_at
             WHERE personal_keys.wrapped_key IS NOT NULL;
        END IF;
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


def _sibling(filename: str) -> ModuleType:
    """An earlier revision's module, for the SQL it froze."""
    spec = importlib.util.spec_from_file_location(filename, Path(__file__).with_name(filename))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVENT_COLUMNS = (
    "position, stream_id, version, event_id, type, payload, metadata, schema_version, "
    "recorded_at, hash"
)

KEYED_EVENTS_SQLITE = [
    f"CREATE VIEW keyed_events AS SELECT {EVENT_COLUMNS}, NULL AS wrapped_key FROM events WHERE 0",
    f"""
CREATE TRIGGER keyed_events_insert INSTEAD OF INSERT ON keyed_events
BEGIN
    SELECT RAISE(ABORT, 'bank: the account was forgotten')
     WHERE EXISTS (SELECT 1 FROM personal_keys
                    WHERE stream_id = NEW.stream_id AND wrapped_key IS NULL);
    DELETE FROM personal_keys WHERE stream_id = NEW.stream_id;
    INSERT INTO personal_keys (stream_id, wrapped_key, created_at)
    VALUES (NEW.stream_id, NEW.wrapped_key, NEW.recorded_at);
    INSERT INTO events ({EVENT_COLUMNS})
    VALUES (NEW.position, NEW.stream_id, NEW.version, NEW.event_id, NEW.type, NEW.payload,
            NEW.metadata, NEW.schema_version, NEW.recorded_at, NEW.hash);
END
""",
]
"""The DELETE removes only a live key that no event uses: a tombstone was refused just above,
and the append's checks proved the stream empty."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_BATCH_FUNCTION)
        op.execute("DROP FUNCTION bank_create_personal_keys(text[], bytea[], timestamptz)")
    else:
        for statement in KEYED_EVENTS_SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_sibling("0006_hash_chain.py").APPEND_BATCH_FUNCTION)
        op.execute(_sibling("0007_personal_keys.py").CREATE_KEYS)
    else:
        op.execute("DROP TRIGGER keyed_events_insert")
        op.execute("DROP VIEW keyed_events")
