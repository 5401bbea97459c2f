"""An account's personal-data key is stored by the append that opens it (migration 0008, and the
SQLite append): in the same transaction, so an append the store refuses or fails leaves no key
behind, and a key exists exactly when its opening does. On both backends."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from kernel.master_key import MasterKey, new_master_key_text
from write_side.command_bus import CommandBus
from write_side.commands import OpenAccount
from write_side.domain.errors import AccountExists
from write_side.personal_data import PersonalData
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys
from write_side.store.records import (
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    TransferExists,
    TransferRecord,
)
from write_side.store.schema import personal_keys


def _personal_data(store: EventStore) -> PersonalData:
    return PersonalData(PersonalKeys(store.engine, MasterKey(new_master_key_text())))


def _opening(
    personal_data: PersonalData, account_id: str, owner: str = "Ada"
) -> tuple[list[NewEvent], dict[str, bytes]]:
    """A sealed AccountOpened for `account_id` and the wrapped key its append stores."""
    opened = NewEvent.from_domain(AccountOpened(owner=owner, currency="USD"))
    sealed = personal_data.seal([(account_id, opened)])
    return [event for _, event in sealed.records], sealed.new_keys


def _deposit() -> NewEvent:
    return NewEvent.from_domain(MoneyDeposited(amount=Decimal("1.00")))


async def _key_rows(store: EventStore) -> dict[str, bytes | None]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(personal_keys.c.stream_id, personal_keys.c.wrapped_key))
        return {stream: None if key is None else bytes(key) for stream, key in rows}


async def test_an_opening_stores_its_key_with_its_event_and_the_key_reveals_the_owner(
    store: EventStore,
) -> None:
    personal_data = _personal_data(store)
    events, keys = _opening(personal_data, "ada", "Ada Lovelace")

    await store.append("ada", events, 0, new_keys=keys)

    assert await _key_rows(store) == keys
    revealed = await personal_data.reveal(await store.read_stream("ada"))
    assert revealed[0].payload["owner"] == "Ada Lovelace"


async def test_an_opening_of_an_existing_account_leaves_no_key_and_keeps_the_first(
    store: EventStore,
) -> None:
    personal_data = _personal_data(store)
    first_events, first_keys = _opening(personal_data, "ada", "Ada First")
    await store.append("ada", first_events, 0, new_keys=first_keys)
    again_events, again_keys = _opening(personal_data, "ada", "Ada Again")

    with pytest.raises(ConcurrencyError) as refused:
        await store.append("ada", again_events, 0, new_keys=again_keys)

    assert refused.value.current_version == 1
    assert await _key_rows(store) == first_keys
    revealed = await personal_data.reveal(await store.read_stream("ada"))
    assert [e.payload["owner"] for e in revealed] == ["Ada First"]


async def test_an_opening_refused_as_a_duplicate_command_or_a_taken_transfer_leaves_no_key(
    store: EventStore,
) -> None:
    personal_data = _personal_data(store)
    record = CommandRecord("key-1", "fp", "", 0, 0, {"balance": "0"})
    await store.append("first", [_deposit()], 0, record)
    claim = TransferRecord("t-1", "fp", {})
    await store.append_many([("a", _deposit()), ("b", _deposit())], {"a": 0, "b": 0}, None, [claim])

    events, keys = _opening(personal_data, "dup")
    with pytest.raises(DuplicateCommand):
        await store.append("dup", events, 0, record, new_keys=keys)
    events, keys = _opening(personal_data, "taken")
    with pytest.raises(TransferExists):
        await store.append_many(
            [("taken", e) for e in events], {"taken": 0}, None, [claim], new_keys=keys
        )

    assert await _key_rows(store) == {}
    assert await store.head_position() == 3


async def test_an_opening_whose_event_insert_fails_rolls_its_key_back(store: EventStore) -> None:
    """The key is written before the events: an event the database refuses (a reused event id)
    must take the key with it, so the two can only commit together."""
    personal_data = _personal_data(store)
    taken = _deposit()
    await store.append("other", [taken], 0)
    events, keys = _opening(personal_data, "ada")

    with pytest.raises(sa.exc.IntegrityError):
        await store.append_many([("ada", events[0]), ("ada", taken)], {"ada": 0}, new_keys=keys)

    assert await _key_rows(store) == {}
    assert await store.stream_version("ada") == 0


async def test_a_forgotten_account_is_never_keyed_again(store: EventStore) -> None:
    personal_data = _personal_data(store)
    await personal_data.keys.destroy("gone")  # a tombstone
    events, keys = _opening(personal_data, "gone")

    with pytest.raises(ConcurrencyError) as refused:
        await store.append("gone", events, 0, new_keys=keys)

    assert refused.value.stream_id == "gone"
    assert await _key_rows(store) == {"gone": None}
    assert await store.head_position() == 0
    bus = CommandBus(AccountRepository(store, 100, personal_data), NoPublisher(), deadline_s=10)
    with pytest.raises(AccountExists):
        await bus.execute(OpenAccount("Gone Again", account_id="gone"))


async def test_a_key_left_without_an_opening_before_0008_is_replaced_by_the_opening(
    store: EventStore,
) -> None:
    personal_data = _personal_data(store)
    stale = personal_data.keys.new_key("ada").wrapped  # stored before its append, as until 0007
    async with store.engine.begin() as conn:
        await conn.execute(
            personal_keys.insert().values(
                stream_id="ada", wrapped_key=stale, created_at=sa.func.now()
            )
        )
    events, keys = _opening(personal_data, "ada", "Ada Reopened")

    await store.append("ada", events, 0, new_keys=keys)

    assert await _key_rows(store) == keys
    revealed = await personal_data.reveal(await store.read_stream("ada"))
    assert revealed[0].payload["owner"] == "Ada Reopened"


async def test_a_key_is_stored_only_with_its_streams_first_events(store: EventStore) -> None:
    personal_data = _personal_data(store)
    await store.append("ada", [_deposit()], 0)
    events, keys = _opening(personal_data, "ada")

    with pytest.raises(ValueError, match="first events"):
        await store.append("ada", events, 1, new_keys=keys)
    with pytest.raises(ValueError, match="first events"):  # a key for a stream not written
        await store.append("bob", [_deposit()], 0, new_keys={"carol": keys["ada"]})

    assert await _key_rows(store) == {}


def _transaction_of_each(pg_url: str) -> list[tuple[str, str, str]]:
    """(stream, the transaction that wrote its key, the one that wrote its first event)."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT k.stream_id, k.xmin::text, e.xmin::text FROM personal_keys k "
            "JOIN events e ON e.stream_id = k.stream_id AND e.version = 1"
        ).fetchall()
    return [(str(s), str(k), str(e)) for s, k, e in rows]


async def test_concurrent_openings_share_transactions_and_each_key_commits_with_its_event(
    pg_store: EventStore, pg_url: str
) -> None:
    """Group commit batches key rows with their events; racers for one id: one opening wins and
    stores its key, the others are refused and store none."""
    personal_data = _personal_data(pg_store)
    bus = CommandBus(AccountRepository(pg_store, 100, personal_data), NoPublisher(), deadline_s=10)

    outcomes = await asyncio.gather(
        *(bus.execute(OpenAccount(f"Owner {n}", account_id=f"acc-{n % 40}")) for n in range(80)),
        return_exceptions=True,
    )

    opened = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(opened) == 40
    assert all(isinstance(o, AccountExists) for o in outcomes if isinstance(o, BaseException))
    together = _transaction_of_each(pg_url)
    assert sorted(s for s, _, _ in together) == sorted(f"acc-{n}" for n in range(40))
    assert all(key_tx == event_tx for _, key_tx, event_tx in together)
    assert len({tx for _, tx, _ in together}) < 40  # the openings shared transactions
    assert len(await _key_rows(pg_store)) == 40
    for n in range(40):
        first = (await personal_data.reveal(await pg_store.read_stream(f"acc-{n}")))[0]
        assert first.payload["owner"] in {f"Owner {n}", f"Owner {n + 40}"}


async def test_an_opening_the_database_refuses_fails_alone_and_its_batch_keeps_its_keys(
    pg_store: EventStore,
) -> None:
    # 65 characters overflow the stream id columns: PostgreSQL refuses the whole statement, and
    # group commit splits the batch until the refusal fails only this opening.
    personal_data = _personal_data(pg_store)
    appends = [
        _opening(personal_data, account_id)
        for account_id in ["x" * 65, *(f"ok-{n}" for n in range(6))]
    ]

    outcomes = await asyncio.gather(
        *(pg_store.append(next(iter(keys)), events, 0, new_keys=keys) for events, keys in appends),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], sa.exc.DataError)
    assert not any(isinstance(o, BaseException) for o in outcomes[1:]), outcomes
    assert sorted(await _key_rows(pg_store)) == sorted(f"ok-{n}" for n in range(6))
