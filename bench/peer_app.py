"""The peer of benchmark 7: the same bank account on the `eventsourcing` library, as its own
examples write it (an Aggregate with @event methods, an Application with snapshots every 100);
in-process, and behind the same HTTP server as the write API (`create_http_app`).

An account's id is derived from its name (`acct-0000`), so the HTTP app finds the accounts the
benchmark opened before starting it, and the load scripts address both sides alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import RecordConflictError
from litestar import Litestar, get, post
from litestar.datastructures import State

from write_side.api.schemas import AmountRequest, CommandResponse

SNAPSHOT_EVERY = 100
CONFLICT_RETRIES = 10


def peer_account_id(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"bench-peer:{name}")


class PeerAccount(Aggregate):
    @staticmethod
    def create_id(name: str, owner: str) -> UUID:
        return peer_account_id(name)

    @event("Opened")
    def __init__(self, name: str, owner: str) -> None:
        self.name = name
        self.owner = owner
        self.balance = Decimal("0.00")

    @event("Deposited")
    def deposit(self, amount: Decimal) -> None:
        self.balance += amount


class PeerBank(Application[UUID]):
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {PeerAccount: SNAPSHOT_EVERY}

    def open_account(self, name: str, owner: str) -> UUID:
        account = PeerAccount(name, owner)
        self.save(account)
        return account.id

    def deposit(self, account_id: UUID, amount: Decimal) -> Decimal:
        account: PeerAccount = self.repository.get(account_id)
        account.deposit(amount)
        self.save(account)
        return account.balance

    def deposit_by_name(self, name: str, amount: Decimal) -> CommandResponse:
        """A deposit answered as the write API answers it (version, position, balance). Two
        concurrent requests for one account race on its version; like ours, the loser retries on
        fresh state instead of failing the request."""
        for _ in range(CONFLICT_RETRIES):
            account: PeerAccount = self.repository.get(peer_account_id(name))
            account.deposit(amount)
            try:
                recordings = self.save(account)
            except RecordConflictError:
                continue
            position = recordings[-1].notification.id if recordings else 0
            return CommandResponse(name, account.version, position, str(account.balance))
        raise RecordConflictError(f"{name}: lost {CONFLICT_RETRIES} version races in a row")


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


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@post("/accounts/{account_id:str}/deposit", status_code=200, sync_to_thread=True)
def deposit(account_id: str, data: AmountRequest, state: State) -> CommandResponse:
    """The library is synchronous (psycopg's blocking pool): Litestar runs it in its threads."""
    bank: PeerBank = state.bank
    return bank.deposit_by_name(account_id, Decimal(str(data.amount)))


def create_http_app() -> Litestar:
    """The library's Application behind Litestar, configured from the environment (postgres_env)."""
    bank = PeerBank()
    return Litestar(
        route_handlers=[deposit, health],
        state=State({"bank": bank}),
        on_shutdown=[bank.close],
        openapi_config=None,
        debug=False,
    )
