"""Concurrent key creations of one process share one statement, as appends share one (group
commit): each process runs at most one `bank_create_personal_keys(...)` call at a time, and the
openings that arrive meanwhile go together in the next one. Under load an opening then costs a
share of a statement instead of a statement of its own.

A failed statement fails every opening that shared it (nothing was appended for any of them yet:
keys are made before the append), and each is answered as a database error would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

MAX_BATCH = 256

KeyRows = Sequence[tuple[str, bytes | None]]
RunBatch = Callable[[list[str], list[bytes]], Awaitable[KeyRows]]
"""(account ids, their wrapped new keys) -> (account id, wrapped key or None) for every id."""


@dataclass(slots=True)
class _Pending:
    ids: list[str]
    wrapped: list[bytes]
    future: asyncio.Future[KeyRows]


class KeyBatcher:
    def __init__(self, run: RunBatch) -> None:
        self._run = run
        self._pending: list[_Pending] = []
        self._draining = False

    async def create(self, ids: list[str], wrapped: list[bytes]) -> KeyRows:
        future: asyncio.Future[KeyRows] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(ids, wrapped, future))
        if not self._draining:
            self._draining = True
            asyncio.create_task(self._drain())  # noqa: RUF006 - it ends when the queue is empty
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._send(batch)
        finally:
            self._draining = False

    async def _send(self, batch: list[_Pending]) -> None:
        chosen: dict[str, bytes] = {}
        for pending in batch:
            for account_id, wrapped in zip(pending.ids, pending.wrapped, strict=True):
                chosen.setdefault(account_id, wrapped)  # racing openers: the first key wins
        try:
            rows = await self._run(list(chosen), list(chosen.values()))
        except BaseException as exc:  # every opening that shared the statement learns why
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        by_id = dict(rows)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_result([(i, by_id.get(i)) for i in pending.ids])
