"""The BankAccount aggregate, rebuilt by applying its events in order.

Deciding and applying are separate: a command method checks the rules in `_check_*` methods and
returns the new events; `apply` only changes state and never refuses. The same `apply` rebuilds
the account from the store, so replaying history can never fail a business rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    MoneyDeposited,
    MoneyWithdrawn,
)
from kernel.identifiers import CURRENCY, OWNER
from kernel.money import ZERO, format_money
from kernel.upcasting import UpcasterChain
from write_side.domain.errors import (
    AccountExists,
    AccountIsClosed,
    AccountNotFound,
    BalanceNotZero,
    InsufficientFunds,
    InvalidCommand,
)

SNAPSHOT_SCHEMA_VERSION = 1
"""Bump when the snapshot's state shape changes, and add a step to SNAPSHOT_UPCASTERS (or none:
snapshots older than the chain reaches are then ignored and the account is rebuilt from events)."""
SNAPSHOT_UPCASTERS = UpcasterChain(current=SNAPSHOT_SCHEMA_VERSION)


@dataclass(slots=True)
class BankAccount:
    account_id: str
    version: int = 0
    owner: str = ""
    currency: str = ""
    balance: Decimal = ZERO
    is_open: bool = False
    is_closed: bool = False

    @classmethod
    def rebuild(cls, account_id: str, events: Iterable[DomainEvent]) -> BankAccount:
        account = cls(account_id)
        for event in events:
            account.apply(event)
        return account

    # --- applying: state changes only -------------------------------------------------------

    def apply(self, event: DomainEvent) -> None:
        match event:
            case AccountOpened(owner=owner, currency=currency):
                self.owner, self.currency, self.is_open = owner, currency, True
            case MoneyDeposited(amount=amount):
                self.balance += amount
            case MoneyWithdrawn(amount=amount):
                self.balance -= amount
            case AccountClosed():
                self.is_open, self.is_closed = False, True
        self.version += 1

    # --- deciding: rules first, then the events ---------------------------------------------

    def open(self, owner: str, currency: str) -> list[DomainEvent]:
        if self.version > 0:
            raise AccountExists(f"account {self.account_id!r} already exists")
        owner = owner.strip()
        if (problem := OWNER.problem(owner)) is not None:
            raise InvalidCommand(problem)
        if not CURRENCY.matches(currency):
            raise InvalidCommand(f"currency must be {CURRENCY.description}, such as USD")
        return self._record(AccountOpened(owner=owner, currency=currency))

    def deposit(self, amount: Decimal, reference: str | None = None) -> list[DomainEvent]:
        self._check_open()
        return self._record(MoneyDeposited(amount=amount, reference=reference))

    def withdraw(self, amount: Decimal, reference: str | None = None) -> list[DomainEvent]:
        self._check_open()
        self._check_funds(amount)
        return self._record(MoneyWithdrawn(amount=amount, reference=reference))

    def close(self) -> list[DomainEvent]:
        self._check_open()
        if self.balance != ZERO:
            raise BalanceNotZero(
                f"account {self.account_id!r} still holds {format_money(self.balance)}; "
                "withdraw it before closing"
            )
        return self._record(AccountClosed())

    def _check_open(self) -> None:
        if self.version == 0:
            raise AccountNotFound(f"account {self.account_id!r} does not exist")
        if self.is_closed:
            raise AccountIsClosed(f"account {self.account_id!r} is closed")

    def _check_funds(self, amount: Decimal) -> None:
        if amount > self.balance:
            raise InsufficientFunds(
                f"cannot withdraw {format_money(amount)}: the balance is {format_money(self.balance)}"
            )

    def _record(self, event: DomainEvent) -> list[DomainEvent]:
        self.apply(event)
        return [event]

    # --- snapshots ----------------------------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "currency": self.currency,
            "balance": format_money(self.balance),
            "is_open": self.is_open,
            "is_closed": self.is_closed,
        }

    @classmethod
    def from_snapshot(
        cls,
        account_id: str,
        version: int,
        state: dict[str, Any],
        schema_version: int = SNAPSHOT_SCHEMA_VERSION,
    ) -> BankAccount:
        state = SNAPSHOT_UPCASTERS.upcast("BankAccount", schema_version, state)
        return cls(
            account_id=account_id,
            version=version,
            owner=state["owner"],
            currency=state["currency"],
            balance=Decimal(state["balance"]),
            is_open=state["is_open"],
            is_closed=state["is_closed"],
        )
