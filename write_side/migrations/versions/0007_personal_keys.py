"""Per-account keys for personal data (crypto-shredding).

Each account whose personal fields are stored sealed has one AES key here, wrapped by the master
key (`BANK_MASTER_KEY`). `bank forget` nulls the key and stamps `erased_at`; the row stays as a
tombstone. Events are untouched: they hold only ciphertext.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_keys",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("personal_keys")
