"""Group commit on SQLite: a process's concurrent appends go through one writer and share its
transactions, yet each keeps its own checks (expected version, idempotency key, transfer id, a
forgotten account), the positions stay gapless and the hash chain whole. Two write-API processes
on one file lose and corrupt nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from kernel.master_key import MasterKey, new_master_key_text
from tests.support import free_port, read_side_settings, start_bank, stop, wait_until
from write_side.audit.verify import verify_chain
from write_side.personal_data import PersonalData
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys
from write_side.store.records import (
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    TransferExists,
    TransferRecord,
)
from write_side.store.schema import events, personal_keys


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[EventStore]:
    engine = create_async_store_engine(sqlite_url)
    try:
        yield EventStore(engine)
    finally:
        await engine.dispose()


def _deposit() -> list[NewEvent]:
    return [NewEvent.from_domain(MoneyDeposited(amount=Decimal("1.00")))]


async def _transactions(store: EventStore) -> int:
    """How many write transactions stored the events: a batch stamps all its events with one
    `recorded_at`, and separate transactions never share one (the clock moves between them)."""
    async with store.engine.connect() as conn:
        query = sa.select(sa.func.count(sa.distinct(events.c.recorded_at)))
        return int((await conn.execute(query)).scalar_one())


def _chain_verifies(sqlite_url: str) -> bool:
    engine = create_sync_store_engine(sqlite_url)
    try:
        return verify_chain(engine).ok
    finally:
        engine.dispose()


async def test_concurrent_appends_share_transactions_in_order_with_a_whole_chain(
    sqlite_store: EventStore, sqlite_url: str
) -> None:
    results = await asyncio.gather(
        *(sqlite_store.append(f"stream-{n % 20}", _deposit(), n // 20) for n in range(60))
    )

    assert sorted(r.last_position for r in results) == list(range(1, 61))
    assert [r.last_version for r in results] == [n // 20 + 1 for n in range(60)]
    stored = await sqlite_store.read_after(0)
    assert [e.position for e in stored] == list(range(1, 61))
    for n in range(20):  # each stream's versions follow its appends' order
        versions = [e.version for e in stored if e.stream_id == f"stream-{n}"]
        assert versions == [1, 2, 3]
    assert await _transactions(sqlite_store) < 60
    assert _chain_verifies(sqlite_url)


async def test_a_conflict_in_a_batch_refuses_only_its_own_append(
    sqlite_store: EventStore,
) -> None:
    await sqlite_store.append("busy", _deposit(), 0)
    outcomes = await asyncio.gather(
        sqlite_store.append("busy", _deposit(), 0),  # stale: the stream is at version 1
        *(sqlite_store.append(f"other-{n}", _deposit(), 0) for n in range(10)),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], ConcurrencyError)
    assert outcomes[0].current_version == 1
    assert not any(isinstance(o, BaseException) for o in outcomes[1:])
    assert await sqlite_store.stream_version("busy") == 1
    assert await sqlite_store.head_position() == 11
    assert await _transactions(sqlite_store) == 2


async def test_the_same_idempotency_key_twice_in_one_batch_appends_once(
    sqlite_store: EventStore,
) -> None:
    record = CommandRecord("key-1", "fp", "", 0, 0, {"balance": "1.00"})
    outcomes = await asyncio.gather(
        sqlite_store.append("a", _deposit(), 0, record),
        sqlite_store.append("b", _deposit(), 0, record),
        return_exceptions=True,
    )

    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], DuplicateCommand)
    first = outcomes[1].record  # what the first append of the batch recorded
    assert (first.stream_id, first.last_version, first.last_position) == ("a", 1, 1)
    assert first.fingerprint == "fp"
    assert await sqlite_store.head_position() == 1
    assert await sqlite_store.find_command("anonymous", "key-1") == first


async def test_the_same_transfer_id_twice_in_one_batch_is_claimed_once(
    sqlite_store: EventStore,
) -> None:
    claim = TransferRecord("t-1", "fp", {"status": "posted"})
    outcomes = await asyncio.gather(
        sqlite_store.append_many([("a", _deposit()[0])], {"a": 0}, transfers=[claim]),
        sqlite_store.append_many([("b", _deposit()[0])], {"b": 0}, transfers=[claim]),
        return_exceptions=True,
    )

    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], TransferExists)
    assert outcomes[1].record == TransferRecord("t-1", "fp", {"status": "posted"}, 1)
    assert await sqlite_store.head_position() == 1


async def test_a_row_sqlite_refuses_fails_its_append_alone_and_the_rest_of_its_batch_commits(
    sqlite_store: EventStore, sqlite_url: str
) -> None:
    reused = _deposit()
    await sqlite_store.append("first", reused, 0)
    outcomes = await asyncio.gather(
        *(sqlite_store.append(f"honest-{n}", _deposit(), 0) for n in range(5)),
        sqlite_store.append("thief", reused, 0),  # an event id the store already holds
        *(sqlite_store.append(f"honest-{n}", _deposit(), 0) for n in range(5, 10)),
        return_exceptions=True,
    )

    refused = outcomes.pop(5)
    assert isinstance(refused, sa.exc.IntegrityError)
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    stored = await sqlite_store.read_after(1)
    assert sorted(e.stream_id for e in stored) == sorted(f"honest-{n}" for n in range(10))
    assert [e.position for e in stored] == list(range(2, 12))
    assert _chain_verifies(sqlite_url)


async def test_an_opening_of_a_forgotten_account_in_a_batch_fails_alone_and_the_others_keep_keys(
    sqlite_store: EventStore,
) -> None:
    personal_data = PersonalData(
        PersonalKeys(sqlite_store.engine, MasterKey(new_master_key_text()))
    )
    await personal_data.keys.destroy("gone")  # a tombstone

    def opening(account_id: str) -> tuple[list[NewEvent], dict[str, bytes]]:
        opened = NewEvent.from_domain(AccountOpened(owner="Ada", currency="USD"))
        sealed = personal_data.seal([(account_id, opened)])
        return [event for _, event in sealed.records], sealed.new_keys

    appends = [opening(account_id) for account_id in ["ok-0", "gone", "ok-1", "ok-2"]]
    outcomes = await asyncio.gather(
        *(sqlite_store.append(next(iter(k)), e, 0, new_keys=k) for e, k in appends),
        return_exceptions=True,
    )

    assert isinstance(outcomes[1], ConcurrencyError)
    assert outcomes[1].stream_id == "gone"
    assert not any(isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 1)
    async with sqlite_store.engine.connect() as conn:
        rows = await conn.execute(sa.select(personal_keys.c.stream_id, personal_keys.c.wrapped_key))
        keys = {str(stream): key for stream, key in rows}
    assert keys.keys() == {"gone", "ok-0", "ok-1", "ok-2"}
    assert keys["gone"] is None
    assert sorted(e.stream_id for e in await sqlite_store.read_after(0)) == ["ok-0", "ok-1", "ok-2"]


async def test_two_write_api_processes_on_one_file_lose_and_corrupt_nothing(
    sqlite_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    settings = read_side_settings(sqlite_url, redis_url, redis_prefix)
    port = free_port()
    server = start_bank(
        ["write-api", "--port", str(port), "--workers", "2"], settings, tmp_path / "w.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def serving() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(serving, 30, "the two-worker write API")
        accounts = [f"acct-{n}" for n in range(4)]
        for account_id in accounts:
            body = {"owner": "Ada", "account_id": account_id}
            assert httpx.post(f"{url}/accounts", json=body).status_code == 201

        async def deposit(n: int) -> httpx.Response:
            # A client per request: new connections, shared out between both processes.
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                path = f"/accounts/{accounts[n % len(accounts)]}/deposit"
                return await client.post(path, json={"amount": "1.00"})

        answers = await asyncio.gather(*(deposit(n) for n in range(200)))
    finally:
        stop(server)

    acknowledged = [a.json() for a in answers if a.status_code == 200]
    assert len(acknowledged) == 200, [a.text for a in answers if a.status_code != 200][:3]
    store_engine = create_async_store_engine(sqlite_url)
    try:
        stored = await EventStore(store_engine).read_after(0, limit=1000)
    finally:
        await store_engine.dispose()
    assert [e.position for e in stored] == list(range(1, len(accounts) + 201))
    at = {(e.stream_id, e.version): e.position for e in stored}
    for answer in acknowledged:  # every acknowledged deposit is where its answer says
        assert at[(answer["account_id"], answer["version"])] == answer["position"]
    assert len({(a["account_id"], a["version"]) for a in acknowledged}) == 200
    assert _chain_verifies(sqlite_url)
