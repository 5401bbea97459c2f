"""The pure rules of transfers and overdraft limits, on accounts in memory."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kernel.events import TransferReceived, TransferSent
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    AccountIsClosed,
    CurrencyMismatch,
    InsufficientFunds,
    LimitBelowBalance,
    SameAccount,
)
from write_side.domain.transfer import decide_transfer


def opened(account_id: str, balance: str = "0", currency: str = "USD") -> BankAccount:
    account = BankAccount(account_id)
    account.open("Ada", currency)
    if Decimal(balance):
        account.deposit(Decimal(balance))
    return account


def test_a_transfer_decides_one_event_per_side_and_moves_the_money() -> None:
    alice, bob = opened("alice", "10.00"), opened("bob")

    events = decide_transfer(alice, bob, "t-1", Decimal("4.00"), "rent")

    assert events.sent == [TransferSent("t-1", "bob", Decimal("4.00"), "rent")]
    assert events.received == [TransferReceived("t-1", "alice", Decimal("4.00"), "rent")]
    assert (alice.balance, bob.balance) == (Decimal("6.00"), Decimal("4.00"))


@pytest.mark.parametrize(
    ("target", "error"),
    [
        (opened("alice"), SameAccount),
        (opened("euro", currency="EUR"), CurrencyMismatch),
    ],
)
def test_a_transfer_needs_two_accounts_of_one_currency(
    target: BankAccount, error: type[Exception]
) -> None:
    with pytest.raises(error):
        decide_transfer(opened("alice", "10.00"), target, "t-1", Decimal("1.00"))


def test_a_transfer_to_a_closed_account_is_refused_before_any_money_moves() -> None:
    alice, closed = opened("alice", "10.00"), opened("closed")
    closed.close()

    with pytest.raises(AccountIsClosed):
        decide_transfer(alice, closed, "t-1", Decimal("1.00"))
    assert alice.balance == Decimal("10.00")


def test_the_overdraft_limit_counts_towards_the_funds_of_a_transfer() -> None:
    alice, bob = opened("alice", "10.00"), opened("bob")
    alice.set_overdraft_limit(Decimal("5.00"))

    decide_transfer(alice, bob, "t-1", Decimal("15.00"))

    assert alice.balance == Decimal("-5.00")
    with pytest.raises(InsufficientFunds):
        decide_transfer(alice, bob, "t-2", Decimal("0.01"))


def test_a_limit_below_the_debt_is_refused_and_one_equal_to_it_allowed() -> None:
    account = opened("alice")
    account.set_overdraft_limit(Decimal("20.00"))
    account.withdraw(Decimal("15.00"))

    with pytest.raises(LimitBelowBalance):
        account.set_overdraft_limit(Decimal("14.99"))
    account.set_overdraft_limit(Decimal("15.00"))
    assert account.overdraft_limit == Decimal("15.00")


def test_the_overdraft_limit_survives_a_snapshot_and_a_version_1_snapshot_has_none() -> None:
    account = opened("alice")
    account.set_overdraft_limit(Decimal("30.00"))

    restored = BankAccount.from_snapshot("alice", account.version, account.snapshot_state())
    old_state = {k: v for k, v in account.snapshot_state().items() if k != "overdraft_limit"}
    old = BankAccount.from_snapshot("alice", account.version, old_state, schema_version=1)

    assert restored == account
    assert old.overdraft_limit == Decimal("0.00")
