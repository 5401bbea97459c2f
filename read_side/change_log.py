"""Reading the change feed's stream back: the changes after a client's `Last-Event-ID`, or the
news that some of them are no longer kept (then the client must reload)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from redis.asyncio import Redis

from kernel.change_feed import FEED_PROJECTION, META_FEED_FROM, Change, ChangeId
from kernel.read_model_layout import FIRST_GENERATION, META_POSITION, ReadModelKeys

PAGE = 1000

Entries = list[tuple[str, dict[str, str]]]
"""Stream entries as a client with `decode_responses=True` returns them."""


class ChangesLost(Exception):
    """Changes after the client's id are no longer in the stream (trimmed, or before the feed)."""


def entry_to_change(entry_id: str, fields: dict[str, str]) -> Change:
    position, _, rank = entry_id.partition("-")
    return Change(ChangeId(int(position), int(rank)), fields["kind"], fields["data"].encode())


class ChangeLog:
    def __init__(self, redis: Redis, keys: ReadModelKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def after(self, since: ChangeId) -> AsyncIterator[Change]:
        """Every change after `since` still in the live generation's stream, oldest first.
        Raises ChangesLost before yielding anything if some of them are gone."""
        live = int(await self._redis.get(self._keys.live(FEED_PROJECTION)) or FIRST_GENERATION)
        generation = self._keys.generation(FEED_PROJECTION, live)
        await self._check_kept(generation.changes, generation.meta, since)
        start = f"({since}"
        while True:
            page = cast(
                Entries, await self._redis.xrange(generation.changes, min=start, count=PAGE)
            )
            for entry_id, fields in page:
                yield entry_to_change(entry_id, fields)
            if len(page) < PAGE:
                return
            start = f"({page[-1][0]}"

    async def _check_kept(self, stream: str, meta: str, since: ChangeId) -> None:
        feed_from, checkpoint = await self._redis.hmget(meta, [META_FEED_FROM, META_POSITION])
        start = int(feed_from) if feed_from is not None else int(checkpoint or 0)
        if since.position < start:
            raise ChangesLost("the feed does not reach back that far")
        if not await self._redis.exists(stream):
            return
        info = await self._redis.xinfo_stream(stream)
        if int(info.get("entries-added", 0)) <= int(info.get("length", 0)):
            return  # nothing was ever trimmed
        first = info.get("first-entry")
        oldest = ChangeId.parse(str(first[0])) if first else None
        # Trimming removes the oldest entries: if the oldest kept one is after the client's, the
        # ones between may be gone (Redis 7.0's XTRIM does not record which, so assume they are).
        if oldest is None or oldest > since:
            raise ChangesLost("changes after that id were trimmed from the feed")
