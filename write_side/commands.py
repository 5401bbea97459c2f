"""Commands: orders to the write side, named in the imperative. Plain, validated data."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kernel.identifiers import ACCOUNT_ID, REFERENCE
from kernel.money import InvalidAmount, parse_amount
from write_side.domain.errors import InvalidCommand


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


Command = OpenAccount | Deposit | Withdraw | CloseAccount
