"""One rule per identifier: a full match, no trailing newline, bounded in characters and bytes."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
import pytest

from kernel.identifiers import ACCOUNT_ID, CURRENCY, IDEMPOTENCY_KEY, TextRule

VALID = [
    (ACCOUNT_ID, "acc-1_X"),
    (ACCOUNT_ID, "a" * 64),
    (CURRENCY, "USD"),
    (IDEMPOTENCY_KEY, "k!~"),
]
INVALID = [
    (ACCOUNT_ID, "nl1\n"),
    (ACCOUNT_ID, "a" * 64 + "\n"),
    (ACCOUNT_ID, "a" * 65),
    (ACCOUNT_ID, "\nabc"),
    (ACCOUNT_ID, "ab\ncd"),
    (ACCOUNT_ID, ""),
    (ACCOUNT_ID, "é"),
    (ACCOUNT_ID, "a/b"),
    (CURRENCY, "USD\n"),
    (CURRENCY, "usd"),
    (CURRENCY, "USDX"),
    (IDEMPOTENCY_KEY, "key\n"),
    (IDEMPOTENCY_KEY, "k" * 201),
    (IDEMPOTENCY_KEY, "a b"),
]


@pytest.mark.parametrize(("rule", "text"), VALID, ids=repr)
def test_a_valid_identifier_matches_its_rule_and_its_pattern(rule: TextRule, text: str) -> None:
    assert rule.matches(text)
    assert re.search(rule.pattern, text)


@pytest.mark.parametrize(("rule", "text"), INVALID, ids=repr)
def test_an_identifier_with_a_trailing_newline_or_out_of_bounds_matches_neither_rule_nor_pattern(
    rule: TextRule, text: str
) -> None:
    assert not rule.matches(text)
    assert not re.search(rule.pattern, text)  # what msgspec and the OpenAPI document use


@pytest.mark.parametrize("text", ["nl1\n", "abc", "a" * 64 + "\n"])
def test_msgspec_enforces_the_same_account_id_rule(text: str) -> None:
    decoded_type = Annotated[str, msgspec.Meta(pattern=ACCOUNT_ID.pattern)]
    try:
        msgspec.convert(text, decoded_type)
        accepted = True
    except msgspec.ValidationError:
        accepted = False

    assert accepted == ACCOUNT_ID.matches(text)
