"""What every read model module provides to the catch-up runner.

A projection reads the state a batch needs through a plain connection, folds the batch in Python,
and queues its writes on a transaction the runner opened: the runner adds the checkpoint to the
same MULTI/EXEC, which is what makes a batch all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kernel.events import RecordedEvent
from kernel.read_model_layout import GenerationKeys


class Projection(Protocol):
    @property
    def name(self) -> str:
        """The projection's name in keys and in `/projections`."""

    async def stage(
        self,
        reader: Redis,
        tx: Pipeline,
        keys: GenerationKeys,
        events: Sequence[RecordedEvent],
        *,
        feed: bool,
    ) -> int:
        """Read the current state of the batch's accounts through `reader`, then queue the batch's
        writes on `tx` (already in MULTI). Returns how many events changed the read model.
        With `feed`, the batch's changes also go to the change feed (live generations of the
        feed's projection only: a rebuild's scratch generation starts its feed at the switch)."""
        ...


async def read_hashes(
    reader: Redis, events: Sequence[RecordedEvent], key_of: Callable[[str], str]
) -> dict[str, dict[str, str]]:
    """The hash `key_of(account_id)` of every account in the batch, in one pipelined round trip."""
    account_ids = list(dict.fromkeys(event.stream_id for event in events))
    async with reader.pipeline(transaction=False) as pipe:
        for account_id in account_ids:
            pipe.hgetall(key_of(account_id))
        rows: list[dict[str, str]] = await pipe.execute()
    return dict(zip(account_ids, rows, strict=True))
