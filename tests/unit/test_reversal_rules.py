"""The pure rules of reversals: the amount back from the original's receiver to its sender, once,
under a derived id no client can choose, and never a reversal of a reversal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kernel.events import TransferReceived, TransferSent, event_from_json, payload_of
from kernel.identifiers import ACCOUNT_ID, RECORDED_TRANSFER_ID
from tests.unit.test_transfer_rules import opened
from write_side.domain.errors import AccountIsClosed, InsufficientFunds, NotReversible
from write_side.domain.reversal import RecordedTransfer, decide_reversal, reversal_id

RENT = RecordedTransfer("t-1", "alice", "bob", Decimal("4.00"))


def test_a_reversal_moves_the_amount_back_and_names_the_original_on_both_sides() -> None:
    alice, bob = opened("alice", "6.00"), opened("bob", "4.00")

    events = decide_reversal(RENT, bob, alice, "refund")

    assert events.sent == [TransferSent("t-1.reversal", "alice", Decimal("4.00"), "refund", "t-1")]
    assert events.received == [
        TransferReceived("t-1.reversal", "bob", Decimal("4.00"), "refund", "t-1")
    ]
    assert (alice.balance, bob.balance) == (Decimal("10.00"), Decimal("0.00"))


def test_a_reversal_is_not_reversible() -> None:
    reversal = RecordedTransfer("t-1.reversal", "bob", "alice", Decimal("4.00"), reversal_of="t-1")

    with pytest.raises(NotReversible):
        decide_reversal(reversal, opened("alice", "9.00"), opened("bob"))


def test_the_receiver_must_still_have_the_money_or_the_overdraft_for_it() -> None:
    alice, bob = opened("alice"), opened("bob", "3.99")

    with pytest.raises(InsufficientFunds):
        decide_reversal(RENT, bob, alice)
    bob.set_overdraft_limit(Decimal("0.01"))
    decide_reversal(RENT, bob, alice)
    assert bob.balance == Decimal("-0.01")


def test_a_closed_sender_cannot_get_the_money_back() -> None:
    alice, bob = opened("alice"), opened("bob", "4.00")
    alice.close()

    with pytest.raises(AccountIsClosed):
        decide_reversal(RENT, bob, alice)
    assert bob.balance == Decimal("4.00")


@pytest.mark.parametrize("transfer_id", ["t", "t-1", "x" * 55, "x" * 56, "y" * 64])
def test_a_reversal_id_fits_the_store_and_no_client_may_choose_it(transfer_id: str) -> None:
    derived = reversal_id(transfer_id)

    assert RECORDED_TRANSFER_ID.matches(derived)
    assert not ACCOUNT_ID.matches(derived)
    assert derived == reversal_id(transfer_id)  # a retry claims the same id


def test_reversal_ids_are_readable_when_they_fit_and_distinct_when_shortened() -> None:
    assert reversal_id("x" * 55) == "x" * 55 + ".reversal"
    long_ids = ["a" * 64, "a" * 63 + "b", "b" * 56]
    shortened = {reversal_id(t) for t in long_ids}
    assert len(shortened) == len(long_ids)
    assert all(s.endswith(".long.reversal") for s in shortened)


def test_an_ordinary_transfer_payload_has_no_reversal_of_and_older_ones_read_without_it() -> None:
    plain = TransferSent("t-1", "bob", Decimal("1.00"))

    assert "reversal_of" not in payload_of(plain)
    stored = b'{"transfer_id": "t-1", "counterparty": "bob", "amount": "1.00"}'
    for version in (1, 2, 3):
        decoded = event_from_json("TransferSent", stored, schema_version=version)
        assert decoded == plain
        assert isinstance(decoded, TransferSent)
        assert decoded.reversal_of is None
