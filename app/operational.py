"""Turning expected operational failures into one clear line for the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis
import sqlalchemy.exc

from kernel.settings import Settings, SettingsError
from write_side.store.personal_keys import MasterKeyMissing

UNDEFINED_TABLE_OR_FUNCTION = {"42P01", "42883"}  # PostgreSQL SQLSTATEs


def _schema_missing(exc: sqlalchemy.exc.DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in UNDEFINED_TABLE_OR_FUNCTION or "no such table" in str(exc.orig)


def load_settings() -> Settings:
    """The settings from the environment, or one clear line and exit 1 when they are invalid. On
    the embedded default store the master key `bank up` keeps is used when none is set."""
    from app.personal_data_cli import with_kept_local_master_key

    try:
        return with_kept_local_master_key(Settings.from_env())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def explain_operational_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except (SettingsError, MasterKeyMissing) as exc:
        raise click.ClickException(str(exc)) from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as exc:
        if _schema_missing(exc):
            raise click.ClickException(
                f"could not {doing}: the event store schema is missing; run `bank migrate` first"
            ) from None
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise click.ClickException(
            f"could not {doing}: the database is unreachable ({reason})"
        ) from None
    except redis.exceptions.ConnectionError as exc:
        raise click.ClickException(f"could not {doing}: Redis is unreachable ({exc})") from None
