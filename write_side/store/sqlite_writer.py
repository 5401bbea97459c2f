"""Group commit on SQLite: one writer per process, many appends per transaction.

SQLite has one write lock per database file. With every append on a connection of its own, the
appends of one process fought for that lock: each loser slept in SQLite's busy handler (a poll
whose naps grow to 100 ms) instead of being woken, and every statement of the winner was a hop to
aiosqlite's thread and back through the event loop while the others waited. Here each process has
one writer: a thread of its own with one connection. Appends that arrive while it writes queue up
and go together in its next transaction (`BEGIN IMMEDIATE` ... `COMMIT`), checked in memory and
written in a few statements (sqlite_append.py). A refused append (version conflict, duplicate
idempotency key, taken transfer id) writes nothing and fails only its own command; a row SQLite
itself refuses rolls the batch back, and its appends are then written one transaction each, so
that refusal too fails only the append that caused it. Under no load a transaction holds one
append; under load one commit serves every append waiting for it.

Processes still share the file (`bank write-api --workers N`, the worker's hold expiry): across
them `BEGIN IMMEDIATE` and the busy timeout (database.py) arbitrate, and expected versions reject
stale decisions, as before.

A failure of the transaction itself (the disk, a lock held past the busy timeout) reaches every
append of the batch: SQLite rolled the whole transaction back, so none of them was recorded.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from write_side.metrics import APPEND_BATCH_SIZE
from write_side.store.database import create_sync_store_engine
from write_side.store.records import MultiAppendResult
from write_side.store.sqlite_append import Outcome, SqliteAppend, append_batch
from write_side.store.sqlite_rows import AccountForgotten

MAX_BATCH = 256

_ROW_REFUSALS = (AccountForgotten, sa.exc.IntegrityError, sa.exc.DataError)
"""SQLite refused a row of the batch: its transaction rolled back, nothing of it was recorded."""

BatchOutcome = Outcome | sa.exc.IntegrityError | sa.exc.DataError


@dataclass(slots=True)
class _Pending:
    append: SqliteAppend
    future: asyncio.Future[MultiAppendResult]


class SqliteWriter:
    """One per EventStore on SQLite (and so per event loop and process)."""

    def __init__(self, engine: AsyncEngine, max_batch: int = MAX_BATCH) -> None:
        self._url = engine.url.set(drivername="sqlite+pysqlite").render_as_string(False)
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._sync_engine: sa.Engine | None = None
        # The store has no close of its own: the writer goes when the store's engine does.
        sa.event.listen(engine.sync_engine, "engine_disposed", lambda _engine: self.close())

    async def submit(self, append: SqliteAppend) -> MultiAppendResult:
        loop = asyncio.get_running_loop()
        pending = _Pending(append, loop.create_future())
        self._queue.append(pending)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return await pending.future

    def close(self) -> None:
        """Close the writer's connection and stop its thread (a later append opens them again)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=True)
        engine, self._sync_engine = self._sync_engine, None
        if engine is not None:
            engine.dispose()

    async def _run(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            await self._settle(batch)

    async def _settle(self, batch: list[_Pending]) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        loop = asyncio.get_running_loop()
        appends = [pending.append for pending in batch]
        outcomes: list[MultiAppendResult | Exception]
        try:
            outcomes = [*await loop.run_in_executor(self._thread, self._write, appends)]
        except Exception as exc:  # noqa: BLE001 - the transaction failed: handed to every append
            outcomes = [_as_refusal(exc)] * len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():  # a cancelled request still had its append done
                continue
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    def _write(self, appends: list[SqliteAppend]) -> list[BatchOutcome]:
        """On the writer's thread: every append of the batch in one transaction. If SQLite refuses
        a row, that transaction rolled back; each append is then written in one of its own, so the
        refusal fails only the append that caused it."""
        if self._sync_engine is None:
            self._sync_engine = create_sync_store_engine(self._url)
        with self._sync_engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            try:
                with conn.begin():
                    outcomes: list[BatchOutcome] = list(append_batch(conn, appends))
            except _ROW_REFUSALS:
                if len(appends) == 1:
                    raise
                outcomes = [_alone(conn, append) for append in appends]
        APPEND_BATCH_SIZE.observe(len(appends))
        return outcomes


def _alone(conn: sa.Connection, append: SqliteAppend) -> BatchOutcome:
    try:
        with conn.begin():
            return append_batch(conn, [append])[0]
    except AccountForgotten as exc:
        return exc.as_conflict()
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        return exc


def _as_refusal(exc: Exception) -> Exception:
    return exc.as_conflict() if isinstance(exc, AccountForgotten) else exc
