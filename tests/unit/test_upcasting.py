"""Schema evolution: an upcaster chain brings a stored payload of any older version to today's."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kernel.events import (
    SCHEMA_VERSION,
    UPCASTERS,
    MoneyDeposited,
    MoneyWithdrawn,
    event_from_json,
    event_from_payload,
    payload_of,
)
from kernel.upcasting import CannotUpcast, Payload, Step, UpcasterChain


def _rename(old: str, new: str) -> Step:
    def step(type_name: str, payload: Payload) -> Payload:
        renamed = dict(payload)
        renamed[new] = renamed.pop(old)
        return renamed

    return step


CHAIN = UpcasterChain(current=3, steps={1: _rename("a", "b"), 2: _rename("b", "c")})


def test_steps_apply_in_order_from_the_stored_version_to_the_current_one() -> None:
    assert CHAIN.upcast("Thing", 1, {"a": 1}) == {"c": 1}
    assert CHAIN.upcast("Thing", 2, {"b": 1}) == {"c": 1}
    assert CHAIN.upcast("Thing", 3, {"c": 1}) == {"c": 1}


def test_a_version_newer_than_the_code_is_refused_rather_than_misread() -> None:
    with pytest.raises(CannotUpcast, match="newer"):
        CHAIN.upcast("Thing", 4, {"d": 1})


def test_a_version_no_step_leads_from_is_refused() -> None:
    with pytest.raises(CannotUpcast, match="no upcaster"):
        CHAIN.upcast("Thing", 0, {"z": 1})
    assert CHAIN.oldest_readable == 1
    assert UpcasterChain(current=5, steps={4: _rename("a", "b")}).oldest_readable == 4


def test_a_deposit_stored_in_the_first_shape_reads_with_no_reference() -> None:
    assert SCHEMA_VERSION == 3
    old = event_from_json("MoneyDeposited", b'{"amount": "5.00"}', schema_version=1)
    assert old == MoneyDeposited(amount=Decimal("5.00"), reference=None)
    assert UPCASTERS.upcast("MoneyWithdrawn", 1, {"amount": "1.00"}) == {
        "amount": "1.00",
        "reference": None,
    }


def test_a_withdrawal_in_todays_shape_keeps_its_reference() -> None:
    event = MoneyWithdrawn(amount=Decimal("2.50"), reference="rent, March")
    assert event_from_payload("MoneyWithdrawn", payload_of(event)) == event
    assert payload_of(MoneyWithdrawn(amount=Decimal("2.50"))) == {"amount": "2.50"}
