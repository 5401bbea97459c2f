"""Per-account keys for personal data (crypto-shredding).

Each account whose personal fields are stored sealed has one AES key here, wrapped by the master
key (`BANK_MASTER_KEY`). `bank forget` nulls the key and stamps `erased_at`; the row stays as a
tombstone. Events are untouched: they hold only ciphertext.

On PostgreSQL, `bank_create_personal_keys` makes the keys of accounts being opened and returns
every asked-for row in one round trip, committing with `synchronous_commit = off`: it needs no
disk flush of its own, because the append that follows is flushed with synchronous commit and a
WAL flush covers every earlier record, this commit included. A key whose append never happened
may be lost in a crash, which loses nothing (no event uses it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


CREATE_KEYS = """
CREATE FUNCTION bank_create_personal_keys(ids text[], wrapped bytea[], at timestamptz)
RETURNS TABLE (stream_id varchar, wrapped_key bytea)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO personal_keys (stream_id, wrapped_key, created_at)
    SELECT i, w, at FROM unnest(ids, wrapped) AS u(i, w)
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT k.stream_id, k.wrapped_key FROM personal_keys k
        WHERE k.stream_id = ANY(ids);
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "personal_keys",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE_KEYS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION bank_create_personal_keys(text[], bytea[], timestamptz)")
    op.drop_table("personal_keys")
