"""The `api_keys` table (created by migration 0002) and the SQL that manages it.

Only the SHA-256 of each token is stored. A revoked key stays as a row (for the audit trail) with
`revoked_at` set; a name is unique among live keys only, so `local` can be issued again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.tokens import checked_scopes, hash_token, new_token, scopes_from_text, scopes_to_text

auth_metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    auth_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("token_hash", name="uq_api_keys_token_hash"),
    sa.Index(
        "uq_api_keys_live_name",
        "name",
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
        sqlite_where=sa.text("revoked_at IS NULL"),
    ),
)


class DuplicateKeyName(ValueError):
    """A live key already has this name."""


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What `bank apikey list` shows: never the token, never its hash."""

    name: str
    scopes: frozenset[str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def key_changes(engine: sa.Engine) -> AbstractContextManager[sa.Connection]:
    """The transaction that creates or revokes keys.

    On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`) and so waits for it (busy
    timeout): a deferred transaction that reads first fails at once with "database is locked" when
    its read has to be upgraded to a write while commands are being appended.
    """
    return engine.execution_options(sqlite_begin="IMMEDIATE").begin()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _live_name_taken(conn: sa.Connection, name: str) -> bool:
    query = sa.select(api_keys.c.id).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
    return conn.execute(query).first() is not None


def create_key(conn: sa.Connection, name: str, scopes: Iterable[str]) -> str:
    """Insert a key; returns the plaintext token, which exists nowhere else afterwards."""
    held = checked_scopes(scopes)
    if not held:
        raise ValueError("a key needs at least one scope")
    if _live_name_taken(conn, name):
        raise DuplicateKeyName(f"a live key named {name!r} exists; revoke it first")
    token = new_token()
    conn.execute(
        api_keys.insert().values(
            name=name,
            token_hash=hash_token(token),
            scopes=scopes_to_text(held),
            created_at=_now(),
        )
    )
    return token


def revoke_key(conn: sa.Connection, name: str) -> str | None:
    """Revoke the live key called `name`; returns its token hash, or None when there is none."""
    revoked = conn.execute(
        api_keys.update()
        .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=_now())
        .returning(api_keys.c.token_hash)
    )
    return revoked.scalar_one_or_none()


def list_keys(conn: sa.Connection) -> list[ApiKeyInfo]:
    columns = (api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at, api_keys.c.revoked_at)
    rows = conn.execute(sa.select(*columns).order_by(api_keys.c.created_at, api_keys.c.id))
    return [
        ApiKeyInfo(row.name, scopes_from_text(row.scopes), row.created_at, row.revoked_at)
        for row in rows
    ]


def live_key_scopes(conn: sa.Connection) -> dict[str, frozenset[str]]:
    """Every live key: token hash -> scopes (what the Redis mirror holds)."""
    query = sa.select(api_keys.c.token_hash, api_keys.c.scopes).where(
        api_keys.c.revoked_at.is_(None)
    )
    return {row.token_hash: scopes_from_text(row.scopes) for row in conn.execute(query)}


async def load_live_key(
    conn: AsyncConnection, token_hash: str
) -> tuple[int, frozenset[str]] | None:
    """The row id and scopes of one live key (the write API's resolver, on its async engine)."""
    query = sa.select(api_keys.c.id, api_keys.c.scopes).where(
        api_keys.c.token_hash == token_hash, api_keys.c.revoked_at.is_(None)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else (row.id, scopes_from_text(row.scopes))
