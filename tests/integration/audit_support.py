"""Shared by the audit tests: a store with every kind of event, and direct SQL on the events table
(the tampering an attacker with database access could do)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from decimal import Decimal

import sqlalchemy as sa

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from tests.support import BANK, append_transfer, set_overdraft_limit
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore


def fill_store(database_url: str) -> int:
    """Accounts (one owner name in unicode), deposits, an overdraft limit, two transfers and the
    reversal of the second; returns the head position."""

    async def run() -> int:
        engine = create_async_store_engine(database_url)
        try:
            store = EventStore(engine)
            owners = {"acc-a": "Zoë Ångström 山田 😀", "acc-b": 'Bob "Quote" \\ O\'Neil\n'}
            for account, owner in owners.items():
                await store.append(account, [NewEvent.from_domain(AccountOpened(owner, "EUR"))], 0)
                deposit = MoneyDeposited(Decimal("100.50"), reference="ref-é")
                await store.append(account, [NewEvent.from_domain(deposit)], 1)
            await set_overdraft_limit(store, "acc-b", "25.00")
            await append_transfer(store, "acc-a", "acc-b", "10.05", "t-1", "rent ☂")
            await append_transfer(store, "acc-b", "acc-a", "0.01", "t-2")
            return await append_transfer(
                store, "acc-a", "acc-b", "0.01", "t-2.reversal", reversal_of="t-2"
            )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def execute(database_url: str, *statements: str) -> None:
    engine = create_sync_store_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def bank(
    database_url: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `bank` CLI against `database_url`."""
    return subprocess.run(
        [*BANK, *args],
        env={**os.environ, "DATABASE_URL": database_url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
