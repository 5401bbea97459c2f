"""Commands: orders to the write side, named in the imperative. Plain, validated data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from kernel.identifiers import ACCOUNT_ID, REFERENCE
from kernel.money import InvalidAmount, parse_amount
from write_side.domain.errors import InvalidCommand, SameAccount

MAX_BATCH = 100
"""The most commands one atomic batch may hold."""


def _valid_amount(raw: Decimal) -> Decimal:
    try:
        return parse_amount(raw)
    except InvalidAmount as exc:
        raise InvalidCommand(str(exc)) from None


def _check_reference(reference: str | None) -> None:
    if reference is not None and (problem := REFERENCE.problem(reference)) is not None:
        raise InvalidCommand(problem)


@dataclass(frozen=True, slots=True)
class OpenAccount:
    owner: str
    currency: str = "USD"
    account_id: str | None = None
    """None lets the write side generate one."""
    expected_version: int | None = None

    def __post_init__(self) -> None:
        if self.account_id is not None and not ACCOUNT_ID.matches(self.account_id):
            raise InvalidCommand(f"account_id must be {ACCOUNT_ID.description}")


@dataclass(frozen=True, slots=True)
class Deposit:
    account_id: str
    amount: Decimal
    expected_version: int | None = None
    reference: str | None = None
    """Free text kept on the event (at most 140 characters)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _valid_amount(self.amount))
        _check_reference(self.reference)


@dataclass(frozen=True, slots=True)
class Withdraw:
    account_id: str
    amount: Decimal
    expected_version: int | None = None
    reference: str | None = None
    """Free text kept on the event (at most 140 characters)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _valid_amount(self.amount))
        _check_reference(self.reference)


@dataclass(frozen=True, slots=True)
class CloseAccount:
    account_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class SetOverdraftLimit:
    account_id: str
    limit: Decimal
    """0 (the default of every account) allows no overdraft."""
    expected_version: int | None = None

    def __post_init__(self) -> None:
        try:
            limit = parse_amount(self.limit, allow_zero=True)
        except InvalidAmount as exc:
            raise InvalidCommand(f"overdraft_limit: {exc}") from None
        object.__setattr__(self, "limit", limit)


Command = OpenAccount | Deposit | Withdraw | CloseAccount | SetOverdraftLimit
"""The commands on one account (the command bus runs them)."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Money from one account to another, both sides in one store transaction."""

    from_account: str
    to_account: str
    amount: Decimal
    transfer_id: str | None = None
    """Chosen by the client, unique in the whole ledger; None lets the write side generate one."""
    reference: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _valid_amount(self.amount))
        _check_reference(self.reference)
        if self.transfer_id is not None and not ACCOUNT_ID.matches(self.transfer_id):
            raise InvalidCommand(f"transfer_id must be {ACCOUNT_ID.description}")
        if self.from_account == self.to_account:
            raise SameAccount("a transfer needs two different accounts")


@dataclass(frozen=True, slots=True)
class ReverseTransfer:
    """Move a recorded transfer's amount back, as a new transfer naming it (`reversal_of`)."""

    transfer_id: str
    """The transfer to reverse."""
    reference: str | None = None
    """The reversal's own reference (free text, at most 140 characters)."""

    def __post_init__(self) -> None:
        _check_reference(self.reference)


BatchCommand: TypeAlias = OpenAccount | Deposit | Withdraw | Transfer


@dataclass(frozen=True, slots=True)
class Batch:
    """Commands applied all together in one store transaction, or not at all."""

    commands: tuple[BatchCommand, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.commands) <= MAX_BATCH:
            raise InvalidCommand(f"a batch holds 1 to {MAX_BATCH} commands")
