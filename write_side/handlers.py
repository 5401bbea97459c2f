"""One small decision function per command: given the rebuilt account, which events follow.

The command bus does the loading, the version checks, the retries and the append around them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernel.events import DomainEvent
from write_side.commands import (
    CloseAccount,
    Command,
    Deposit,
    OpenAccount,
    SetOverdraftLimit,
    Withdraw,
)
from write_side.domain.account import BankAccount


def open_account(account: BankAccount, command: OpenAccount) -> list[DomainEvent]:
    return account.open(command.owner, command.currency)


def deposit(account: BankAccount, command: Deposit) -> list[DomainEvent]:
    return account.deposit(command.amount, command.reference)


def withdraw(account: BankAccount, command: Withdraw) -> list[DomainEvent]:
    return account.withdraw(command.amount, command.reference)


def close_account(account: BankAccount, command: CloseAccount) -> list[DomainEvent]:
    return account.close()


def set_overdraft_limit(account: BankAccount, command: SetOverdraftLimit) -> list[DomainEvent]:
    return account.set_overdraft_limit(command.limit)


Decide = Callable[[BankAccount, Any], list[DomainEvent]]

HANDLERS: dict[type[Command], Decide] = {
    OpenAccount: open_account,
    Deposit: deposit,
    Withdraw: withdraw,
    CloseAccount: close_account,
    SetOverdraftLimit: set_overdraft_limit,
}
