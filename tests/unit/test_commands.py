"""Commands validate their own data: amounts are exact Decimals, positive, two decimals, capped."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kernel.money import (
    MAX_AMOUNT,
    format_cents,
    format_money,
    from_cents,
    parse_amount,
    to_cents,
)
from write_side.commands import CloseAccount, Deposit, OpenAccount, Withdraw
from write_side.domain.errors import InvalidCommand

AMOUNT_COMMANDS = [Deposit, Withdraw]


@pytest.mark.parametrize("command", AMOUNT_COMMANDS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.50", Decimal("12.50")),
        ("12.5", Decimal("12.50")),
        ("7", Decimal("7.00")),
        ("0.01", Decimal("0.01")),
        ("1000000000.00", MAX_AMOUNT),
        (Decimal("1E+3"), Decimal("1000.00")),  # the JSON number 1e3, decoded exactly
        (12, Decimal("12.00")),
        (Decimal("0.07"), Decimal("0.07")),
        (Decimal("3.10"), Decimal("3.10")),
    ],
)
def test_an_amount_given_as_a_string_or_number_becomes_an_exact_two_place_decimal(
    command: type[Deposit | Withdraw], raw: object, expected: Decimal
) -> None:
    built = command("acc-1", raw)  # type: ignore[arg-type]

    assert built.amount == expected
    assert built.amount.as_tuple().exponent == -2


@pytest.mark.parametrize("command", AMOUNT_COMMANDS)
@pytest.mark.parametrize(
    "raw",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("NaN"),
        Decimal("Infinity"),
        "-1",
        "-0.01",
        "0",
        "0.00",
        "-0",
        0,
        -5,
        "0.001",
        "1.001",
        "12.345",
        "1000000000.01",
        "1e10",
        "1e999999999",
        "1e-999999999",
        10**40,
        "",
        "   ",
        "12,50",
        "twelve",
        "0x10",
        # Decimal() reads all of these; the documented grammar does not
        " 7 ",
        "  5 ",
        "1e3",
        "1e2",
        "1_000",
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11\uff12",  # full-width digits
        "+5",
        ".5",
        "5.",
        "5\n",
        "12.50\n",
        None,
        True,
        [1],
        {"amount": 1},
        1.5,
    ],
    ids=repr,
)
def test_an_invalid_amount_is_refused_as_an_invalid_command(
    command: type[Deposit | Withdraw], raw: object
) -> None:
    with pytest.raises(InvalidCommand):
        command("acc-1", raw)  # type: ignore[arg-type]


def test_a_float_amount_is_refused_because_it_may_not_be_exact() -> None:
    # 0.07 as a float is 0.070000000000000006661...: money must arrive as text or Decimal.
    with pytest.raises(InvalidCommand, match="decimal number"):
        Deposit("acc-1", 0.07)  # type: ignore[arg-type]


def test_open_account_defaults_to_usd_and_a_generated_id() -> None:
    command = OpenAccount("Ada")

    assert command.currency == "USD"
    assert command.account_id is None
    assert command.expected_version is None


def test_commands_carry_an_optional_expected_version() -> None:
    assert Deposit("a", "1", expected_version=3).expected_version == 3  # type: ignore[arg-type]
    assert Withdraw("a", "1").expected_version is None  # type: ignore[arg-type]
    assert CloseAccount("a", 7).expected_version == 7


def test_money_travels_as_a_string_with_two_decimals_and_as_integer_cents() -> None:
    assert format_money(Decimal("12.5")) == "12.50"
    assert format_money(Decimal("0")) == "0.00"
    assert to_cents(Decimal("1000000000.00")) == 100_000_000_000
    assert from_cents(1250) == Decimal("12.50")
    assert parse_amount(format_money(from_cents(1))) == Decimal("0.01")


def test_cents_are_formatted_exactly_as_the_decimal_path_formats_them() -> None:
    samples = [*range(-1005, 1005), 10**11, -(10**11) - 7, 123_456_789_012_345]
    assert [format_cents(c) for c in samples] == [format_money(from_cents(c)) for c in samples]


def test_a_deposit_or_withdrawal_may_carry_a_reference_of_at_most_140_characters() -> None:
    assert Deposit("a", Decimal("1.00"), reference="x" * 140).reference == "x" * 140
    assert Withdraw("a", Decimal("1.00"), reference="rent").reference == "rent"
    with pytest.raises(InvalidCommand, match="reference must be 1 to 140"):
        Deposit("a", Decimal("1.00"), reference="x" * 141)
    with pytest.raises(InvalidCommand, match="control characters"):
        Withdraw("a", Decimal("1.00"), reference="line\nbreak")
