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

import msgspec

from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    MoneyDeposited,
    MoneyWithdrawn,
    OverdraftLimitSet,
    PersonalDataErased,
    TransferReceived,
    TransferSent,
)
from kernel.identifiers import CURRENCY, OWNER
from kernel.money import ZERO, format_money
from kernel.personal_data import ERASED, Personal
from kernel.upcasting import UpcasterChain
from write_side.domain.errors import (
    AccountExists,
    AccountIsClosed,
    AccountNotFound,
    BalanceNotZero,
    InsufficientFunds,
    InvalidCommand,
    LimitBelowBalance,
)

SNAPSHOT_SCHEMA_VERSION = 3
"""Bump when the snapshot's state shape changes, and add a step to SNAPSHOT_UPCASTERS (or none:
snapshots older than the chain reaches are then ignored and the account is rebuilt from events).
1: the first shape. 2: `overdraft_limit`. 3: `personal_data_erased`, and `owner` as stored
(sealed `{"enc": ...}` with encryption on: a snapshot never holds a name in clear)."""


def _no_overdraft_before_limits(type_name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "overdraft_limit": "0.00"}


def _nothing_erased_before_shredding(type_name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "personal_data_erased": False}


SNAPSHOT_UPCASTERS = UpcasterChain(
    current=SNAPSHOT_SCHEMA_VERSION,
    steps={1: _no_overdraft_before_limits, 2: _nothing_erased_before_shredding},
)


@dataclass(slots=True)
class BankAccount:
    account_id: str
    version: int = 0
    owner: Personal = ""
    """As stored: sealed with encryption on (the aggregate decides nothing on it, so loading
    needs no key), clear text just after `open`, `ERASED` once forgotten."""
    currency: str = ""
    balance: Decimal = ZERO
    is_open: bool = False
    is_closed: bool = False
    overdraft_limit: Decimal = ZERO
    """How far below zero withdrawals and outgoing transfers may take the balance."""
    personal_data_erased: bool = False

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
            case MoneyWithdrawn(amount=amount) | TransferSent(amount=amount):
                self.balance -= amount
            case TransferReceived(amount=amount):
                self.balance += amount
            case OverdraftLimitSet(limit=limit):
                self.overdraft_limit = limit
            case AccountClosed():
                self.is_open, self.is_closed = False, True
            case PersonalDataErased():
                self.owner, self.personal_data_erased = ERASED, True
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
        self.check_open()
        return self._record(MoneyDeposited(amount=amount, reference=reference))

    def withdraw(self, amount: Decimal, reference: str | None = None) -> list[DomainEvent]:
        self.check_open()
        self._check_funds(amount)
        return self._record(MoneyWithdrawn(amount=amount, reference=reference))

    def set_overdraft_limit(self, limit: Decimal) -> list[DomainEvent]:
        self.check_open()
        if self.balance < -limit:
            raise LimitBelowBalance(
                f"cannot set the overdraft limit to {format_money(limit)}: the balance is "
                f"{format_money(self.balance)}"
            )
        return self._record(OverdraftLimitSet(limit=limit))

    def send_transfer(
        self,
        transfer_id: str,
        to: str,
        amount: Decimal,
        reference: str | None,
        reversal_of: str | None = None,
    ) -> list[DomainEvent]:
        """The sending side; the receiving account must already be checked (transfer.py)."""
        self.check_open()
        self._check_funds(amount)
        return self._record(TransferSent(transfer_id, to, amount, reference, reversal_of))

    def receive_transfer(
        self,
        transfer_id: str,
        sender: str,
        amount: Decimal,
        reference: str | None,
        reversal_of: str | None = None,
    ) -> list[DomainEvent]:
        self.check_open()
        return self._record(TransferReceived(transfer_id, sender, amount, reference, reversal_of))

    def close(self) -> list[DomainEvent]:
        self.check_open()
        if self.balance != ZERO:
            raise BalanceNotZero(
                f"account {self.account_id!r} still holds {format_money(self.balance)}; "
                "withdraw it before closing"
            )
        return self._record(AccountClosed())

    def erase_personal_data(self) -> list[DomainEvent]:
        """Forget the owner (its key is destroyed by the caller). Open or closed, the account stays
        and can still move money; erasing twice records nothing the second time."""
        if self.version == 0:
            raise AccountNotFound(f"account {self.account_id!r} does not exist")
        if self.personal_data_erased:
            return []
        return self._record(PersonalDataErased())

    def check_open(self) -> None:
        if self.version == 0:
            raise AccountNotFound(f"account {self.account_id!r} does not exist")
        if self.is_closed:
            raise AccountIsClosed(f"account {self.account_id!r} is closed")

    def _check_funds(self, amount: Decimal) -> None:
        if amount > self.balance + self.overdraft_limit:
            limit = self.overdraft_limit
            overdraft = f" and the overdraft limit {format_money(limit)}" if limit else ""
            raise InsufficientFunds(
                f"cannot take {format_money(amount)} from account {self.account_id!r}: the "
                f"balance is {format_money(self.balance)}{overdraft}"
            )

    def _record(self, event: DomainEvent) -> list[DomainEvent]:
        self.apply(event)
        return [event]

    # --- snapshots ----------------------------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "owner": msgspec.to_builtins(self.owner),
            "currency": self.currency,
            "balance": format_money(self.balance),
            "is_open": self.is_open,
            "is_closed": self.is_closed,
            "overdraft_limit": format_money(self.overdraft_limit),
            "personal_data_erased": self.personal_data_erased,
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
            owner=msgspec.convert(state["owner"], Personal),
            currency=state["currency"],
            balance=Decimal(state["balance"]),
            is_open=state["is_open"],
            is_closed=state["is_closed"],
            overdraft_limit=Decimal(state["overdraft_limit"]),
            personal_data_erased=state["personal_data_erased"],
        )
