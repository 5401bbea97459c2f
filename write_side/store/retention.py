"""Idempotency records expire: a key is remembered for a retention period (`IDEMPOTENCY_RETENTION`,
24 hours by default), then it may be used again as a new command.

Lookups ignore an expired record at once; deleting it is only housekeeping, done by the worker's
periodic sweep, so the table does not grow for ever. An append that finds an expired record of
its own key replaces it (the primary key would refuse a second row).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from write_side.store.schema import commands

DEFAULT_RETENTION = timedelta(hours=24)


def valid_after(retention: timedelta) -> datetime:
    """Records written before this moment have expired."""
    return datetime.now(UTC) - retention


def purge_expired_commands(engine: sa.Engine, retention: timedelta) -> int:
    """Delete every expired record (index on recorded_at); returns how many were deleted."""
    with engine.begin() as conn:
        deleted = conn.execute(
            commands.delete().where(commands.c.recorded_at < valid_after(retention))
        )
    return deleted.rowcount
