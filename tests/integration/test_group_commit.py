"""Group commit on PostgreSQL: concurrent appends share transactions, yet each keeps its own
expected-version check and idempotency record."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy.exc

from kernel.events import MoneyDeposited, NewEvent
from tests.support import free_port, wait_until
from write_side.domain.errors import OutcomeUnknown, StoreUnavailable
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.records import CommandRecord, ConcurrencyError, DuplicateCommand

APPEND_LOCK_KEY = 727_001  # the store-wide lock bank_append_batch() takes


def _deposit() -> list[NewEvent]:
    return [NewEvent.from_domain(MoneyDeposited(amount=Decimal("1.00")))]


def _transactions_of_events(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(DISTINCT xmin::text) FROM events").fetchone()
    assert row is not None
    return int(row[0])


async def test_concurrent_appends_share_transactions(pg_store: EventStore, pg_url: str) -> None:
    results = await asyncio.gather(
        *(pg_store.append(f"stream-{n}", _deposit(), 0) for n in range(60))
    )
    assert sorted(r.last_position for r in results) == list(range(1, 61))
    assert all(r.last_version == 1 for r in results)
    assert _transactions_of_events(pg_url) < 60


async def test_a_conflict_in_a_batch_refuses_only_its_own_append(pg_store: EventStore) -> None:
    await pg_store.append("busy", _deposit(), 0)
    outcomes = await asyncio.gather(
        pg_store.append("busy", _deposit(), 0),  # stale: the stream is at version 1
        *(pg_store.append(f"other-{n}", _deposit(), 0) for n in range(10)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], ConcurrencyError)
    assert outcomes[0].current_version == 1
    assert not any(isinstance(o, BaseException) for o in outcomes[1:])
    assert await pg_store.stream_version("busy") == 1
    assert await pg_store.head_position() == 11


async def test_the_same_idempotency_key_twice_in_one_batch_appends_once(
    pg_store: EventStore,
) -> None:
    record = CommandRecord("key-1", "fp", "", 0, 0, {"balance": "1.00"})
    outcomes = await asyncio.gather(
        pg_store.append("a", _deposit(), 0, record),
        pg_store.append("b", _deposit(), 0, record),
        return_exceptions=True,
    )
    duplicates = [o for o in outcomes if isinstance(o, DuplicateCommand)]
    assert len(duplicates) == 1
    assert duplicates[0].record.fingerprint == "fp"
    assert await pg_store.head_position() == 1


async def test_a_failed_batch_fails_every_append_in_it_and_the_next_batch_works(
    pg_store: EventStore, pg_url: str
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    await pg_store.append("warm", _deposit(), 0)  # opens a pooled connection

    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
    outcomes = await asyncio.gather(
        *(pg_store.append(f"s-{n}", _deposit(), 0) for n in range(5)), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(not isinstance(o, ConcurrencyError) for o in failed)
    retried = await pg_store.append("after", _deposit(), 0)
    assert retried.last_version == 1
    with pytest.raises(ConcurrencyError):
        await pg_store.append("after", _deposit(), 0)


async def test_an_append_the_database_refuses_fails_alone_and_the_rest_of_its_batch_commits(
    pg_store: EventStore, pg_url: str
) -> None:
    # 65 characters overflow events.stream_id VARCHAR(64): HTTP validation would refuse this id,
    # so it is sent straight to the store, where PostgreSQL refuses the whole statement.
    outcomes = await asyncio.gather(
        *(pg_store.append(f"honest-{n}", _deposit(), 0) for n in range(5)),
        pg_store.append("x" * 65, _deposit(), 0),
        *(pg_store.append(f"honest-{n}", _deposit(), 0) for n in range(5, 10)),
        return_exceptions=True,
    )

    refused = outcomes.pop(5)
    assert isinstance(refused, sqlalchemy.exc.DataError)
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    stored = await pg_store.read_after(0)
    assert sorted(e.stream_id for e in stored) == sorted(f"honest-{n}" for n in range(10))
    assert _transactions_of_events(pg_url) < 10  # the honest appends still shared transactions


async def test_an_append_that_cannot_reach_the_database_is_store_unavailable() -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing_listens_here"
    engine = create_async_store_engine(nowhere)
    try:
        with pytest.raises(StoreUnavailable, match="nothing was recorded"):
            await EventStore(engine).append("s", _deposit(), 0)
    finally:
        await engine.dispose()


def _appends_waiting_for_the_lock(pg_url: str) -> list[int]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%bank_append_batch%'"
        ).fetchall()
    return [int(row[0]) for row in rows]


async def test_a_connection_lost_after_the_append_was_sent_is_outcome_unknown_for_its_batch(
    pg_store: EventStore, pg_url: str
) -> None:
    # The store-wide append lock, held here, parks the batch inside bank_append_batch(); killing
    # its backend there loses the connection after the statement was sent.
    with psycopg.connect(pg_url, autocommit=True) as blocker:
        blocker.execute("SELECT pg_advisory_lock(%s)", (APPEND_LOCK_KEY,))
        appends = asyncio.gather(
            *(pg_store.append(f"s-{n}", _deposit(), 0) for n in range(3)), return_exceptions=True
        )
        await asyncio.to_thread(
            wait_until, lambda: _appends_waiting_for_the_lock(pg_url), 10, "the append to wait"
        )
        for pid in _appends_waiting_for_the_lock(pg_url):
            blocker.execute("SELECT pg_terminate_backend(%s)", (pid,))
        outcomes = await appends

    assert all(isinstance(o, OutcomeUnknown) for o in outcomes), outcomes
    assert all("nothing was recorded" not in str(o) for o in outcomes)
    assert (await pg_store.append("after", _deposit(), 0)).last_version == 1
