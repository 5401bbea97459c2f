"""The BankAccount aggregate on its own: the business rules, rebuilding and snapshots. No I/O."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    MoneyDeposited,
    MoneyWithdrawn,
)
from kernel.identifiers import OWNER
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    AccountExists,
    AccountIsClosed,
    AccountNotFound,
    BalanceNotZero,
    InsufficientFunds,
    InvalidCommand,
    LedgerError,
    TransactionError,
)

Command = Callable[[BankAccount], object]


def opened(balance: str = "0.00") -> BankAccount:
    account = BankAccount("acc-1")
    account.open("Ada Lovelace", "EUR")
    if Decimal(balance) > 0:
        account.deposit(Decimal(balance))
    return account


# --- opening ------------------------------------------------------------------------------------


def test_opening_records_account_opened_with_owner_and_currency() -> None:
    account = BankAccount("acc-1")

    events = account.open("Ada Lovelace", "EUR")

    assert events == [AccountOpened(owner="Ada Lovelace", currency="EUR")]
    assert (account.version, account.owner, account.currency) == (1, "Ada Lovelace", "EUR")
    assert account.is_open
    assert not account.is_closed
    assert account.balance == Decimal("0.00")


def test_opening_strips_the_owner_of_surrounding_spaces() -> None:
    account = BankAccount("acc-1")

    assert account.open("  Ada  ", "USD") == [AccountOpened(owner="Ada", currency="USD")]


def test_opening_an_account_twice_is_refused() -> None:
    account = opened()

    with pytest.raises(AccountExists):
        account.open("Someone Else", "USD")
    assert account.version == 1


@pytest.mark.parametrize("owner", ["", "   ", "x" * (OWNER.max_length + 1)])
def test_an_owner_outside_one_to_two_hundred_characters_is_refused(owner: str) -> None:
    account = BankAccount("acc-1")

    with pytest.raises(InvalidCommand):
        account.open(owner, "USD")
    assert account.version == 0


@pytest.mark.parametrize(
    "owner", ["a\x00b", "\x00", "Ada\nLovelace", "Ada\tL", "Ada\x7f", "Ada\x9b"]
)
def test_an_owner_with_control_characters_is_refused(owner: str) -> None:
    account = BankAccount("acc-1")

    with pytest.raises(InvalidCommand, match="control characters"):
        account.open(owner, "USD")
    assert account.version == 0


@pytest.mark.parametrize(
    "owner", ["A", "x" * OWNER.max_length, "Zoë 李", "Ada\u00a0L", "مهر\u200cنوش"]
)
def test_an_owner_of_one_to_two_hundred_printable_characters_is_accepted(owner: str) -> None:
    account = BankAccount("acc-1")

    account.open(owner, "USD")

    assert account.owner == owner


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U1D", "", "€UR", " USD"])
def test_a_currency_that_is_not_three_upper_case_letters_is_refused(currency: str) -> None:
    account = BankAccount("acc-1")

    with pytest.raises(InvalidCommand):
        account.open("Ada", currency)
    assert account.version == 0


# --- depositing and withdrawing -----------------------------------------------------------------


def test_a_deposit_raises_the_balance() -> None:
    account = opened()

    events = account.deposit(Decimal("12.50"))

    assert events == [MoneyDeposited(amount=Decimal("12.50"))]
    assert account.balance == Decimal("12.50")
    assert account.version == 2


def test_a_withdrawal_lowers_the_balance() -> None:
    account = opened("100.00")

    events = account.withdraw(Decimal("30.25"))

    assert events == [MoneyWithdrawn(amount=Decimal("30.25"))]
    assert account.balance == Decimal("69.75")
    assert account.version == 3


def test_withdrawing_the_whole_balance_is_allowed() -> None:
    account = opened("10.00")

    account.withdraw(Decimal("10.00"))

    assert account.balance == Decimal("0.00")


def test_withdrawal_larger_than_balance_is_refused() -> None:
    account = opened("10.00")

    with pytest.raises(InsufficientFunds):
        account.withdraw(Decimal("10.01"))
    assert account.balance == Decimal("10.00")
    assert account.version == 2


def test_business_refusals_share_one_error_hierarchy() -> None:
    assert issubclass(InsufficientFunds, TransactionError)
    assert issubclass(AccountIsClosed, TransactionError)
    assert issubclass(BalanceNotZero, TransactionError)


@pytest.mark.parametrize(
    "command",
    [
        lambda a: a.deposit(Decimal("1.00")),
        lambda a: a.withdraw(Decimal("1.00")),
        lambda a: a.close(),
    ],
    ids=["deposit", "withdraw", "close"],
)
def test_an_account_that_was_never_opened_refuses_commands(command: Command) -> None:
    account = BankAccount("ghost")

    with pytest.raises(AccountNotFound):
        command(account)
    assert account.version == 0


# --- closing ------------------------------------------------------------------------------------


def test_closing_an_account_with_zero_balance_records_account_closed() -> None:
    account = opened("5.00")
    account.withdraw(Decimal("5.00"))

    events = account.close()

    assert events == [AccountClosed()]
    assert account.is_closed
    assert not account.is_open


def test_closing_an_account_that_still_holds_money_is_refused() -> None:
    account = opened("0.01")

    with pytest.raises(BalanceNotZero):
        account.close()
    assert not account.is_closed
    assert account.version == 2


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (lambda a: a.deposit(Decimal("1.00")), AccountIsClosed),
        (lambda a: a.withdraw(Decimal("1.00")), AccountIsClosed),
        (lambda a: a.close(), AccountIsClosed),
        (lambda a: a.open("Ada", "USD"), AccountExists),
    ],
    ids=["deposit", "withdraw", "close", "open"],
)
def test_a_closed_account_refuses_every_command(command: Command, error: type[LedgerError]) -> None:
    account = opened()
    account.close()

    with pytest.raises(error):
        command(account)
    assert account.version == 2
    assert account.is_closed


# --- rebuilding and snapshots -------------------------------------------------------------------


def decided_account() -> tuple[BankAccount, list[DomainEvent]]:
    account = BankAccount("acc-1")
    events = [
        *account.open("Ada", "GBP"),
        *account.deposit(Decimal("100.00")),
        *account.withdraw(Decimal("0.01")),
        *account.deposit(Decimal("999999999.99")),
        *account.withdraw(Decimal("1000000099.98")),
        *account.close(),
    ]
    return account, events


def test_rebuilding_from_the_events_in_order_gives_the_state_reached_by_deciding() -> None:
    account, events = decided_account()

    rebuilt = BankAccount.rebuild("acc-1", events)

    assert rebuilt == account
    assert rebuilt.version == len(events) == 6


def test_rebuilding_a_prefix_of_the_events_gives_the_state_at_that_version() -> None:
    _, events = decided_account()

    rebuilt = BankAccount.rebuild("acc-1", events[:3])

    assert (rebuilt.version, rebuilt.balance, rebuilt.is_open) == (3, Decimal("99.99"), True)


def test_applying_never_refuses_so_history_always_replays() -> None:
    # A withdrawal the rules would refuse today still replays: history is a fact, not a request.
    account = BankAccount.rebuild(
        "acc-1",
        [AccountOpened("Ada", "USD"), MoneyWithdrawn(Decimal("5.00"))],
    )

    assert account.balance == Decimal("-5.00")


def test_snapshot_state_round_trips_to_an_equal_account() -> None:
    account = opened("1234.56")
    account.withdraw(Decimal("0.06"))

    restored = BankAccount.from_snapshot("acc-1", account.version, account.snapshot_state())

    assert restored == account
    assert isinstance(restored.balance, Decimal)


def test_snapshot_state_is_plain_json_with_money_as_a_string() -> None:
    account = opened("12.5")

    state = account.snapshot_state()

    assert state == {
        "owner": "Ada Lovelace",
        "currency": "EUR",
        "balance": "12.50",
        "is_open": True,
        "is_closed": False,
        "overdraft_limit": "0.00",
        "personal_data_erased": False,
        "holds": {},
    }


def test_a_closed_account_round_trips_through_a_snapshot() -> None:
    account, _ = decided_account()

    restored = BankAccount.from_snapshot("acc-1", account.version, account.snapshot_state())

    assert restored == account
    with pytest.raises(AccountIsClosed):
        restored.deposit(Decimal("1.00"))
