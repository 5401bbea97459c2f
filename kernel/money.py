"""Exact money: `Decimal` with two places in the domain, integer cents in Redis, strings on the wire.

Never float: a JSON number is decoded straight into `Decimal` from its text.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

AMOUNT_TEXT = r"^[0-9]{1,10}(\.[0-9]{1,2})?(?!\n)$"
"""The one grammar of an amount sent as a string: ASCII digits, at most two decimals. No sign,
exponent, spaces, '_' or other scripts' digits, all of which `Decimal()` itself would accept.
(`(?!\n)$`: Python's `$` alone would let a final newline through; see kernel/identifiers.py.)"""
_AMOUNT_TEXT = re.compile(AMOUNT_TEXT)
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000.00")
ZERO = Decimal("0.00")


class InvalidAmount(ValueError):
    """An amount that is not a positive number of at most two decimals and at most MAX_AMOUNT."""


def parse_amount(raw: object, *, allow_zero: bool = False) -> Decimal:
    """Turn a client's amount (a string, an int or a Decimal decoded exactly from a JSON number)
    into an exact, validated Decimal. `allow_zero` is for limits, where 0 means "none"."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise InvalidAmount("amount must be a decimal number, as a JSON string or number")
    if isinstance(raw, str) and _AMOUNT_TEXT.search(raw) is None:
        raise InvalidAmount(
            f"amount {raw[:40]!r} must be written as digits with at most two decimals, e.g. '12.50'"
        )
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise InvalidAmount(f"amount {str(raw)[:40]!r} is not a decimal number") from None
    if not value.is_finite():
        raise InvalidAmount("amount must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidAmount(
            f"amount must be {'zero or more' if allow_zero else 'greater than zero'}"
        )
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"amount must be at most {MAX_AMOUNT}")
    if value != value.quantize(CENT):
        raise InvalidAmount("amount must have at most two decimal places")
    return value.quantize(CENT)


def format_money(value: Decimal) -> str:
    """The wire form of money: a string with exactly two decimals, e.g. "12.50"."""
    return str(value.quantize(CENT))


def format_cents(cents: int) -> str:
    """`format_money(from_cents(cents))` without a Decimal: projections format every entry."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{part:02d}"


def to_cents(value: Decimal) -> int:
    return int(value.quantize(CENT) * 100)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)
