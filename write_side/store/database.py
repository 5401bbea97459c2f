"""Engines for the event store: the URL a user gives becomes the driver we use.

`postgresql://` picks psycopg 3 (sync and async); `sqlite:///path` picks sqlite3 / aiosqlite with
WAL and `BEGIN IMMEDIATE`, so that an append holds SQLite's write lock from its first read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.settings import SettingsError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(raw: str, *, use_async: bool) -> URL:
    try:
        url = make_url(raw)
    except sa.exc.ArgumentError as exc:  # its message repeats the URL, password included
        raise SettingsError(
            f"DATABASE_URL is not a valid SQLAlchemy URL: {type(exc).__name__}"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite" if use_async else "sqlite+pysqlite")
    raise SettingsError(f"DATABASE_URL must be postgresql:// or sqlite:///, got {backend}://")


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _prepare_sqlite_file(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_pragmas(sync_engine: sa.Engine) -> None:
    @sa.event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # single statements: SQLite commits each one itself
        # Appends ask for IMMEDIATE so they hold the write lock from their first read.
        mode = options.get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_async_store_engine(raw_url: str, *, pool_size: int = 10) -> AsyncEngine:
    url = normalise_url(raw_url, use_async=True)
    if is_sqlite(url):
        _prepare_sqlite_file(url)
        engine = create_async_engine(url)
        _install_sqlite_pragmas(engine.sync_engine)
        return engine
    # Every statement of the store is a transaction of its own (the append is one PL/pgSQL call),
    # so the engine runs in autocommit: no BEGIN/COMMIT round trips, no reset on check-in.
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )


def create_sync_store_engine(raw_url: str) -> sa.Engine:
    url = normalise_url(raw_url, use_async=False)
    if is_sqlite(url):
        _prepare_sqlite_file(url)
        engine = sa.create_engine(url)
        _install_sqlite_pragmas(engine)
        return engine
    return sa.create_engine(url)
