"""Crypto-shredding on both stores: owners are sealed before the append, revealed only with their
account's key, and forgetting an account destroys the key while its money stays."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from kernel.master_key import MasterKey, new_master_key_text
from kernel.personal_data import ERASED
from tests.integration.audit_support import bank
from write_side.batches import BatchRunner
from write_side.command_bus import CommandBus
from write_side.commands import Batch, Deposit, OpenAccount, Transfer
from write_side.forget import forget_account
from write_side.personal_data import PersonalData
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.personal_keys import PersonalKeys
from write_side.store.schema import events, personal_keys, snapshots

NAME = "Ada Quux-Lovelace"


def _wired(store: EventStore) -> tuple[CommandBus, AccountRepository, PersonalData]:
    personal_data = PersonalData(PersonalKeys(store.engine, MasterKey(new_master_key_text())))
    repository = AccountRepository(store, snapshot_every=3, personal_data=personal_data)
    return CommandBus(repository, NoPublisher(), deadline_s=10), repository, personal_data


async def _stored_text(store: EventStore) -> str:
    """Every event payload and snapshot state as the database holds them."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events.c.payload))).scalars().all()
        states = (await conn.execute(sa.select(snapshots.c.state))).scalars().all()
    return json.dumps([*rows, *states])


async def test_the_store_holds_the_owner_only_as_ciphertext_and_the_audit_reveals_it(
    store: EventStore,
) -> None:
    bus, _, personal_data = _wired(store)
    await bus.execute(OpenAccount(NAME, account_id="ada"))
    for _ in range(4):  # crosses snapshot_every: the snapshot must not hold the name either
        await bus.execute(Deposit("ada", Decimal("2.50")))

    assert NAME not in await _stored_text(store)
    stored = (await store.read_stream("ada"))[0]
    assert set(stored.payload["owner"]) == {"enc"}
    assert json.loads(json.dumps(stored.payload)) == stored.payload  # plain JSON: round-trips
    revealed = await personal_data.reveal(await store.read_stream("ada"))
    assert revealed[0].payload["owner"] == NAME
    assert [e.payload for e in revealed[1:]] == [
        e.payload for e in (await store.read_stream("ada"))[1:]
    ]


async def test_accounts_opened_in_a_batch_each_get_their_own_key(store: EventStore) -> None:
    bus, repository, personal_data = _wired(store)
    batch = Batch(
        (
            OpenAccount(NAME, account_id="b1"),
            OpenAccount("Bob Second", account_id="b2"),
            Deposit("b1", Decimal("5.00")),
            Transfer("b1", "b2", Decimal("1.00")),
        )
    )
    await BatchRunner(bus, repository, NoPublisher()).execute(batch)

    text = await _stored_text(store)
    assert NAME not in text
    assert "Bob Second" not in text
    async with store.engine.connect() as conn:
        keyed = (await conn.execute(sa.select(personal_keys.c.stream_id))).scalars().all()
    assert sorted(keyed) == ["b1", "b2"]
    owners = [
        e.payload["owner"]
        for e in await personal_data.reveal(await store.read_after(0))
        if e.type == "AccountOpened"
    ]
    assert owners == [NAME, "Bob Second"]


async def test_a_forgotten_account_reads_erased_everywhere_and_still_moves_money(
    store: EventStore,
) -> None:
    bus, repository, personal_data = _wired(store)
    await bus.execute(OpenAccount(NAME, account_id="ada"))
    await bus.execute(Deposit("ada", Decimal("10.00")))

    forgotten = await forget_account(repository, personal_data, NoPublisher(), "ada")

    assert forgotten.position is not None
    history = await store.read_stream("ada")
    assert [e.type for e in history][-1] == "PersonalDataErased"
    revealed = await personal_data.reveal(history)
    assert revealed[0].payload["owner"] == ERASED
    loaded = (await repository.load("ada")).account
    assert (loaded.owner, loaded.balance) == (ERASED, Decimal("10.00"))
    after = await bus.execute(Deposit("ada", Decimal("1.00")))
    assert after.balance == Decimal("11.00")
    again = await forget_account(repository, personal_data, NoPublisher(), "ada")
    assert again.position is None  # nothing more to record
    assert len(await store.read_stream("ada")) == len(history) + 1
    async with store.engine.connect() as conn:
        key = (await conn.execute(sa.select(personal_keys.c.wrapped_key))).scalar_one()
    assert key is None


async def test_an_export_moves_sealed_owners_and_forgotten_accounts_to_a_new_store(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    """`bank export`/`bank import` carry each account's key (still wrapped) on its AccountOpened
    line: with the same master key the new store reads its owners, and a forgotten account stays
    forgotten there."""
    master = MasterKey(new_master_key_text())
    engine = create_async_store_engine(sqlite_url)
    try:
        store = EventStore(engine)
        personal_data = PersonalData(PersonalKeys(engine, master))
        repository = AccountRepository(store, snapshot_every=3, personal_data=personal_data)
        bus = CommandBus(repository, NoPublisher(), deadline_s=10)
        await bus.execute(OpenAccount(NAME, account_id="ada"))
        await bus.execute(OpenAccount("Bob Forgotten", account_id="bob"))
        await forget_account(repository, personal_data, NoPublisher(), "bob")
    finally:
        await engine.dispose()
    exported = tmp_path / "ledger.jsonl"

    assert (await asyncio.to_thread(bank, sqlite_url, "export", str(exported))).returncode == 0
    assert (await asyncio.to_thread(bank, pg_url, "import", str(exported))).returncode == 0

    moved = create_async_store_engine(pg_url)
    try:
        revealer = PersonalData(PersonalKeys(moved, master))
        moved_store = EventStore(moved)
        ada = await revealer.reveal(await moved_store.read_stream("ada"))
        bob = await revealer.reveal(await moved_store.read_stream("bob"))
    finally:
        await moved.dispose()
    assert ada[0].payload["owner"] == NAME
    assert bob[0].payload["owner"] == ERASED
    assert "Bob Forgotten" not in exported.read_text()
