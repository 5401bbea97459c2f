"""The peer of benchmark 7: the same bank account on the `eventsourcing` library, as its own
examples write it (an Aggregate with @event methods, an Application with snapshots every 100)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

SNAPSHOT_EVERY = 100


class PeerAccount(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = Decimal("0.00")

    @event("Deposited")
    def deposit(self, amount: Decimal) -> None:
        self.balance += amount


class PeerBank(Application[UUID]):
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {PeerAccount: SNAPSHOT_EVERY}

    def open_account(self, owner: str) -> UUID:
        account = PeerAccount(owner)
        self.save(account)
        return account.id

    def deposit(self, account_id: UUID, amount: Decimal) -> Decimal:
        account: PeerAccount = self.repository.get(account_id)
        account.deposit(amount)
        self.save(account)
        return account.balance


def postgres_env(dbname: str) -> dict[str, str]:
    """Its PostgreSQL persistence on our benchmark database (its own tables, peerbank_*)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "unused-with-trust-auth",
        "CREATE_TABLE": "y",
    }
