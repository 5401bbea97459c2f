"""Group commit: many concurrent appends of one process share one PostgreSQL transaction.

Appends hold the store-wide lock until their COMMIT has been flushed to disk (that is what keeps
positions commit-ordered), so one transaction per command would cost one flush per command, one
after another. Instead, each process runs at most one append transaction at a time: appends that
arrive while it is in flight queue up and go together in the next `bank_append_batch(...)` call.
Under no load a batch is one append and costs what a single append did; under load a flush is
shared by every command waiting for it.

Sharing a statement must not share one command's failure. If PostgreSQL refuses the statement
itself (a data or integrity error: its transaction rolled back, nothing committed), the batch is
split in halves and each half sent again, until the refusal fails only the append that caused it.
A lost connection is different: the statement may have committed before the answer was lost, so
nothing is retried; every command of the batch gets OutcomeUnknown. A connection that could not
even be opened sent nothing: StoreUnavailable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from write_side.domain.errors import OutcomeUnknown, StoreUnavailable
from write_side.metrics import APPEND_BATCH_SIZE

MAX_BATCH = 256

_APPEND_BATCH = sa.text(
    "SELECT item, outcome, conflict_stream, current_version, last_position, versions, "
    "stored_fingerprint, stored_result FROM bank_append_batch(CAST(:appends AS jsonb))"
)
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    outcome: str
    """`appended` (`versions`, `last_position`); `conflict` (`conflict_stream` is at
    `current_version`); `duplicate` (an earlier command with the same idempotency key: its
    stream in `conflict_stream`, its version, position, fingerprint and result); or
    `transfer_exists` (the transfer id in `conflict_stream`, the first transfer's position,
    fingerprint and result)."""
    conflict_stream: str | None
    current_version: int | None
    last_position: int | None
    versions: dict[str, int] | None
    stored_fingerprint: str | None
    stored_result: dict[str, Any] | None


@dataclass(slots=True)
class _Pending:
    append: dict[str, Any]
    future: asyncio.Future[AppendOutcome]


class AppendBatcher:
    """One per EventStore (and so per event loop and process)."""

    def __init__(self, engine: AsyncEngine, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, append: dict[str, Any]) -> AppendOutcome:
        loop = asyncio.get_running_loop()
        pending = _Pending(append, loop.create_future())
        self._queue.append(pending)
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return await pending.future

    async def _run(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            await self._settle(batch)

    async def _settle(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await self._call([pending.append for pending in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting commands
            if len(batch) > 1 and _rejected_by_statement(exc):
                middle = len(batch) // 2
                await self._settle(batch[:middle])
                await self._settle(batch[middle:])
                return
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.future.done():  # a cancelled request still had its append done
                pending.future.set_result(outcome)

    async def _call(self, appends: list[dict[str, Any]]) -> list[AppendOutcome]:
        try:
            conn = await self._engine.connect().start()
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable() from exc
        try:
            rows = (
                await conn.execute(_APPEND_BATCH, {"appends": _json.encode(appends).decode()})
            ).all()
        except Exception as exc:
            if _rejected_by_statement(exc):
                raise
            raise OutcomeUnknown() from exc
        finally:
            await conn.close()
        outcomes: list[AppendOutcome | None] = [None] * len(appends)
        for item, *answer in rows:
            outcomes[item] = AppendOutcome(*answer)
        if any(outcome is None for outcome in outcomes):
            raise RuntimeError("bank_append_batch() did not answer for every append")
        APPEND_BATCH_SIZE.observe(len(appends))
        return [outcome for outcome in outcomes if outcome is not None]


def _rejected_by_statement(exc: Exception) -> bool:
    """PostgreSQL refused the statement's data (SQLSTATE class 22 or 23) on a live connection: the
    statement's transaction rolled back, so the batch provably committed nothing."""
    return (
        isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError) and not exc.connection_invalidated
    )
