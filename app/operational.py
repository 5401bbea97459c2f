"""Turning expected operational failures into one clear line for the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis
import sqlalchemy.exc

from app.settings import SettingsError


@contextmanager
def explain_operational_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise click.ClickException(
            f"could not {doing}: the database is unreachable ({reason})"
        ) from None
    except sqlalchemy.exc.ProgrammingError:
        raise click.ClickException(
            f"could not {doing}: the event store schema is missing; run `bank migrate` first"
        ) from None
    except redis.exceptions.ConnectionError as exc:
        raise click.ClickException(f"could not {doing}: Redis is unreachable ({exc})") from None
