"""Global order on PostgreSQL: a reader tailing `read_after(checkpoint)` never skips an event.

Why this needs the store-wide append lock: `position` comes from a sequence, and a sequence hands out
numbers when a row is inserted, not when its transaction commits. Without the lock, writer A can take
position 10, writer B position 11, and B commit first. A reader polling at that moment sees 11,
moves its checkpoint to 11, and never asks for 10 again once A commits: the event is lost to every
projection. With `pg_advisory_xact_lock` held from before the inserts until commit, positions become
visible strictly in order, so "everything after my checkpoint" is always complete.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from kernel.events import NewEvent
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

pytestmark = pytest.mark.postgres

WRITERS = 12
APPENDS_PER_WRITER = 15
MAX_EVENTS_PER_APPEND = 4  # multi-event appends keep a transaction open longer: a wider race window
READ_BATCH = 25


async def write_stream(url: str, stream_id: str, rng: random.Random) -> list[uuid.UUID]:
    engine = create_async_store_engine(url, pool_size=1)  # each writer on its own connection
    store = EventStore(engine)
    written: list[uuid.UUID] = []
    try:
        for _ in range(APPENDS_PER_WRITER):
            await asyncio.sleep(rng.uniform(0, 0.003))
            batch = [
                NewEvent("MoneyDeposited", {"amount": "1.00"})
                for _ in range(rng.randint(1, MAX_EVENTS_PER_APPEND))
            ]
            await store.append(stream_id, batch, expected_version=len(written))
            written.extend(e.event_id for e in batch)
    finally:
        await engine.dispose()
    return written


async def tail(
    store: EventStore, writers_done: asyncio.Event
) -> tuple[list[int], list[uuid.UUID], int]:
    """Read everything after the checkpoint until the writers are done and nothing is left."""
    positions: list[int] = []
    event_ids: list[uuid.UUID] = []
    checkpoint = 0
    reads_while_writing = 0
    while True:
        finished = (
            writers_done.is_set()
        )  # read the flag first: a final pass must follow the last commit
        batch = await store.read_after(checkpoint, limit=READ_BATCH)
        if batch:
            positions.extend(e.position for e in batch)
            event_ids.extend(e.event_id for e in batch)
            checkpoint = batch[-1].position
            reads_while_writing += not finished
        elif finished:
            return positions, event_ids, reads_while_writing
        else:
            await asyncio.sleep(0.0005)


async def test_a_tailing_reader_sees_every_event_exactly_once_in_position_order(
    pg_url: str,
) -> None:
    rng = random.Random(20261127)
    reader_engine = create_async_store_engine(pg_url, pool_size=1)
    reader = EventStore(reader_engine)
    writers_done = asyncio.Event()
    try:
        tailing = asyncio.create_task(tail(reader, writers_done))
        written_per_writer = await asyncio.gather(
            *(
                write_stream(pg_url, f"writer-{n}", random.Random(rng.random()))
                for n in range(WRITERS)
            )
        )
        writers_done.set()
        positions, seen, reads_while_writing = await tailing

        everything = await reader.read_after(0, limit=100_000)
    finally:
        await reader_engine.dispose()

    written = {event_id for ids in written_per_writer for event_id in ids}
    assert len(written) >= 300
    assert reads_while_writing >= 10, "the reader must have raced the writers to prove anything"
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert positions == sorted(positions), "events arrived out of position order"
    assert set(seen) == {e.event_id for e in everything} == written, "an event was skipped"
