"""Random command sequences against BankAccount, checked against a model a reader can verify by eye.

The model is deliberately naive (a few fields and if-statements); the aggregate must agree with it
after every step, its balance must never go negative, its versions must stay dense, and replaying
the events it recorded must rebuild exactly the same account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kernel.events import DomainEvent
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    AccountExists,
    AccountIsClosed,
    AccountNotFound,
    BalanceNotZero,
    InsufficientFunds,
    LedgerError,
)

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500.00"), places=2)
owners = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=20)
currencies = st.sampled_from(["USD", "EUR", "JPY"])


@dataclass
class Model:
    opened: bool = False
    closed: bool = False
    balance: Decimal = Decimal("0.00")
    version: int = 0


class BankAccountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.account = BankAccount("acc-1")
        self.model = Model()
        self.recorded: list[DomainEvent] = []

    def run(self, command: object, refusal: type[LedgerError] | None) -> bool:
        """Run `command()`; check it was refused with `refusal`, or recorded exactly one event."""
        version_before = self.account.version
        if refusal is not None:
            try:
                command()  # type: ignore[operator]
            except refusal:
                assert self.account.version == version_before
                return False
            raise AssertionError(f"expected {refusal.__name__}, the aggregate accepted the command")
        events = command()  # type: ignore[operator]
        assert len(events) == 1
        self.recorded.extend(events)
        self.model.version += 1
        return True

    def refusal_for_existing_account(self) -> type[LedgerError] | None:
        if not self.model.opened:
            return AccountNotFound
        if self.model.closed:
            return AccountIsClosed
        return None

    @rule(owner=owners, currency=currencies)
    def open(self, owner: str, currency: str) -> None:
        refusal = AccountExists if self.model.opened else None
        if self.run(lambda: self.account.open(owner, currency), refusal):
            self.model.opened = True

    @rule(amount=amounts)
    def deposit(self, amount: Decimal) -> None:
        refusal = self.refusal_for_existing_account()
        if self.run(lambda: self.account.deposit(amount), refusal):
            self.model.balance += amount

    @rule(amount=amounts)
    def withdraw(self, amount: Decimal) -> None:
        refusal = self.refusal_for_existing_account()
        if refusal is None and amount > self.model.balance:
            refusal = InsufficientFunds
        if self.run(lambda: self.account.withdraw(amount), refusal):
            self.model.balance -= amount

    @rule()
    def withdraw_everything(self) -> None:
        # Random amounts rarely empty the account exactly; closing needs this path to be common.
        if self.model.opened and not self.model.closed and self.model.balance > 0:
            self.withdraw(self.model.balance)

    @rule()
    def close(self) -> None:
        refusal = self.refusal_for_existing_account()
        if refusal is None and self.model.balance != 0:
            refusal = BalanceNotZero
        if self.run(self.account.close, refusal):
            self.model.closed = True

    @invariant()
    def balance_is_never_negative(self) -> None:
        assert self.account.balance >= 0

    @invariant()
    def aggregate_agrees_with_the_model(self) -> None:
        assert self.account.balance == self.model.balance
        assert self.account.is_closed == self.model.closed
        assert self.account.is_open == (self.model.opened and not self.model.closed)

    @invariant()
    def versions_are_dense(self) -> None:
        assert self.account.version == self.model.version == len(self.recorded)

    @invariant()
    def replaying_the_recorded_events_gives_the_same_state(self) -> None:
        assert BankAccount.rebuild("acc-1", self.recorded) == self.account

    @invariant()
    def a_snapshot_restores_the_same_state(self) -> None:
        state = self.account.snapshot_state()
        assert BankAccount.from_snapshot("acc-1", self.account.version, state) == self.account


BankAccountMachine.TestCase.settings = settings(
    max_examples=75, stateful_step_count=30, deadline=None
)
TestBankAccountAgainstModel = BankAccountMachine.TestCase
