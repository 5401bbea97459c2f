"""`bank apikey create|list|revoke`: manage the API keys in SQL and refresh the Redis mirror.

The token is printed once, alone on the last line, so scripts can take it with `tail -n 1`.
A key's SQL row is the truth. Each change also rewrites the Redis mirror the query API reads, and a
revoke is announced to the write APIs' caches (`auth.revocations`), so both APIs follow at once.
When Redis cannot be updated the command says so: `create` still prints the token (the worker's
sweep mirrors it), `revoke` exits non-zero (the key is revoked in SQL; the sweep and the write API's
cache TTL bound how long it still works).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa
import sqlalchemy.exc
from redis.exceptions import RedisError

from app.operational import explain_operational_errors, load_settings
from auth.key_store import (
    ApiKeyInfo,
    DuplicateKeyName,
    create_key,
    key_changes,
    list_keys,
    revoke_key,
)
from auth.mirror import mirror_api_keys, mirror_client
from auth.revocations import announce_revocation
from auth.sql_resolver import DEFAULT_TTL_S
from auth.tokens import SCOPES, scopes_to_text
from kernel.settings import Settings
from write_side.store.database import create_sync_store_engine

KEY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@click.group()
def apikey() -> None:
    """Create, list and revoke the API keys the two APIs accept."""


@apikey.command()
@click.option("--name", required=True, help="A label for the key (letters, digits, _ . -).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(SCOPES),
    help="Repeat for several: write (commands), read (queries, events), admin (everything).",
)
def create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print its token (once: only its hash is stored)."""
    if not KEY_NAME.match(name):
        raise click.BadParameter(
            "use 1 to 64 letters, digits, '_', '.' or '-'", param_hint="--name"
        )
    settings = load_settings()
    with _explained("create the API key"), _store(settings) as engine:
        with key_changes(engine) as conn:
            try:
                token = create_key(conn, name, scopes)
            except DuplicateKeyName as exc:
                raise click.ClickException(str(exc)) from None
        mirror_problem = _refresh_mirror(settings, engine)
    if mirror_problem:
        click.echo(
            f"warning: {mirror_problem}; the query API accepts the key after the worker's next sweep",
            err=True,
        )
    click.echo(f"created API key {name!r} with scopes {scopes_to_text(scopes)}")
    click.echo("the token is shown only now; keep it secret:")
    click.echo(token)


@apikey.command("list")
def list_() -> None:
    """List the keys: name, scopes, created, revoked (never the token)."""
    settings = load_settings()
    with _explained("list the API keys"), _store(settings) as engine, engine.connect() as conn:
        keys = list_keys(conn)
    if not keys:
        click.echo("no API keys; create one with `bank apikey create --name NAME --scope read`")
        return
    rows = [("NAME", "SCOPES", "CREATED", "REVOKED"), *(_row(key) for key in keys)]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@apikey.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the live key called NAME: both APIs refuse it at once."""
    settings = load_settings()
    with _explained("revoke the API key"), _store(settings) as engine:
        with key_changes(engine) as conn:
            token_hash = revoke_key(conn, name)
            if token_hash is None:
                raise click.ClickException(f"no live API key is named {name!r}")
        redis_problem = _refresh_mirror(settings, engine, revoked=token_hash)
    if redis_problem:
        raise click.ClickException(
            f"revoked {name!r} in the database, but {redis_problem}: the query API accepts it "
            "until the worker's sweep rebuilds the mirror, the write API for up to "
            f"{DEFAULT_TTL_S:g} s (its cache)"
        )
    click.echo(f"revoked API key {name!r}")


def _row(key: ApiKeyInfo) -> tuple[str, str, str, str]:
    revoked = _utc(key.revoked_at) if key.revoked_at else "-"
    return key.name, scopes_to_text(key.scopes).replace(" ", ","), _utc(key.created_at), revoked


def _utc(moment: dt.datetime) -> str:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refresh_mirror(
    settings: Settings, engine: sa.Engine, *, revoked: str | None = None
) -> str | None:
    """Rewrite the mirror and announce a revoked key's hash to the write APIs.

    None on success, else what went wrong (the SQL change has already committed).
    """
    try:
        with mirror_client(settings.redis.url) as client:
            mirror_api_keys(settings, engine=engine, client=client)
            if revoked is not None:
                announce_revocation(client, settings.redis.prefix, revoked)
    except (RedisError, OSError) as exc:
        return f"the Redis mirror could not be updated ({exc})"
    return None


@contextmanager
def _store(settings: Settings) -> Iterator[sa.Engine]:
    engine = create_sync_store_engine(settings.store.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _explained(doing: str) -> Iterator[None]:
    """`explain_operational_errors`, plus SQLite's way of saying the table is missing."""
    with explain_operational_errors(doing):
        try:
            yield
        except sqlalchemy.exc.OperationalError as exc:
            if "no such table" in str(exc.orig):
                raise click.ClickException(
                    f"could not {doing}: the API-key table is missing; run `bank migrate` first"
                ) from None
            raise
