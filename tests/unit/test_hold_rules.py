"""The pure rules of holds, on accounts in memory: reserving, resolving once, expiry by the clock,
what holds do to the other commands, and snapshots that keep pending holds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kernel.events import (
    HoldCaptured,
    HoldExpired,
    HoldPlaced,
    HoldVoided,
    TransferReceived,
    TransferSent,
    event_from_payload,
    payload_of,
)
from kernel.identifiers import ACCOUNT_ID
from write_side.domain.account import BankAccount, PendingHold
from write_side.domain.errors import (
    AccountIsClosed,
    AccountNotFound,
    AmountExceedsHold,
    CurrencyMismatch,
    HoldNotFound,
    InsufficientFunds,
    LimitBelowBalance,
    PendingHolds,
    SameAccount,
)
from write_side.domain.hold import (
    decide_capture,
    decide_expiry,
    decide_hold,
    decide_void,
    resolution_id,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DEADLINE = NOW + timedelta(minutes=5)


def opened(account_id: str, balance: str = "0", currency: str = "USD") -> BankAccount:
    account = BankAccount(account_id)
    account.open("Ada", currency)
    if Decimal(balance):
        account.deposit(Decimal(balance))
    return account


def held(amount: str = "30.00") -> tuple[BankAccount, BankAccount]:
    alice, bob = opened("alice", "100.00"), opened("bob")
    decide_hold(alice, bob, "h-1", Decimal(amount), DEADLINE, "order 7")
    return alice, bob


def test_a_hold_reserves_on_the_sender_and_is_known_to_both_sides() -> None:
    alice, bob = opened("alice", "100.00"), opened("bob")

    events = decide_hold(alice, bob, "h-1", Decimal("30.00"), DEADLINE, "order 7")

    assert events.sent == [HoldPlaced("h-1", "from", "bob", Decimal("30.00"), DEADLINE, "order 7")]
    assert events.received == [
        HoldPlaced("h-1", "to", "alice", Decimal("30.00"), DEADLINE, "order 7")
    ]
    assert (alice.balance, alice.held, alice.available) == (
        Decimal("100.00"),
        Decimal("30.00"),
        Decimal("70.00"),
    )
    assert (bob.held, bob.available, set(bob.holds)) == (Decimal("0.00"), Decimal("0.00"), {"h-1"})


def test_available_counts_the_overdraft_limit_and_every_pending_hold() -> None:
    alice, bob = opened("alice", "10.00"), opened("bob")
    alice.set_overdraft_limit(Decimal("20.00"))
    decide_hold(alice, bob, "h-1", Decimal("25.00"), DEADLINE)

    with pytest.raises(InsufficientFunds):
        decide_hold(alice, bob, "h-2", Decimal("5.01"), DEADLINE)
    decide_hold(alice, bob, "h-2", Decimal("5.00"), DEADLINE)

    assert (alice.held, alice.available) == (Decimal("30.00"), Decimal("0.00"))


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("alice", SameAccount),
        ("nobody", AccountNotFound),
        ("closed", AccountIsClosed),
        ("euro", CurrencyMismatch),
    ],
)
def test_a_hold_is_refused_like_a_transfer(target: str, error: type[Exception]) -> None:
    alice = opened("alice", "100.00")
    accounts = {
        "alice": alice,
        "nobody": BankAccount("nobody"),
        "closed": opened("closed"),
        "euro": opened("euro", currency="EUR"),
    }
    accounts["closed"].close()

    with pytest.raises(error):
        decide_hold(alice, accounts[target], "h-1", Decimal("1.00"), DEADLINE)
    assert alice.holds == {}


def test_held_money_cannot_be_withdrawn_sent_or_lent_against() -> None:
    alice, _ = held("80.00")
    alice.set_overdraft_limit(Decimal("10.00"))

    with pytest.raises(InsufficientFunds, match=r"with 80\.00 held"):
        alice.withdraw(Decimal("30.01"))
    alice.withdraw(Decimal("30.00"))  # allowed: 100 + 10 - 80
    with pytest.raises(LimitBelowBalance):
        alice.set_overdraft_limit(Decimal("9.99"))


def test_a_full_capture_releases_the_hold_and_moves_the_money_as_a_transfer() -> None:
    alice, bob = held()

    resolution = decide_capture(alice, bob, "h-1", None, NOW)

    assert resolution.sent == [
        TransferSent("h-1", "bob", Decimal("30.00"), "order 7"),
        HoldCaptured("h-1", "from", "bob", Decimal("30.00"), Decimal("0.00")),
    ]
    assert resolution.received == [
        TransferReceived("h-1", "alice", Decimal("30.00"), "order 7"),
        HoldCaptured("h-1", "to", "alice", Decimal("30.00"), Decimal("0.00")),
    ]
    assert (resolution.status, alice.balance, alice.held, bob.balance) == (
        "captured",
        Decimal("70.00"),
        Decimal("0.00"),
        Decimal("30.00"),
    )
    assert alice.holds == bob.holds == {}


def test_a_partial_capture_releases_the_rest() -> None:
    alice, bob = held()

    resolution = decide_capture(alice, bob, "h-1", Decimal("12.50"), NOW)

    assert (resolution.captured, resolution.released) == (Decimal("12.50"), Decimal("17.50"))
    assert (alice.balance, alice.available) == (Decimal("87.50"), Decimal("87.50"))


def test_capturing_more_than_is_held_is_refused() -> None:
    alice, bob = held()

    with pytest.raises(AmountExceedsHold):
        decide_capture(alice, bob, "h-1", Decimal("30.01"), NOW)
    assert alice.held == Decimal("30.00")


def test_a_void_releases_everything() -> None:
    alice, bob = held()

    resolution = decide_void(alice, bob, "h-1", NOW)

    assert resolution.sent == [HoldVoided("h-1", "from", "bob", Decimal("30.00"))]
    assert (alice.balance, alice.held, bob.holds) == (Decimal("100.00"), Decimal("0.00"), {})


def test_a_hold_resolves_once() -> None:
    alice, bob = held()
    decide_void(alice, bob, "h-1", NOW)

    with pytest.raises(HoldNotFound):
        decide_capture(alice, bob, "h-1", None, NOW)
    with pytest.raises(HoldNotFound):
        decide_expiry(alice, bob, "h-1", DEADLINE)


def test_only_the_sending_side_resolves_a_hold() -> None:
    alice, bob = held()

    with pytest.raises(HoldNotFound):
        decide_void(bob, alice, "h-1", NOW)


def test_expiry_waits_for_the_deadline_and_then_releases_everything() -> None:
    alice, bob = held()

    assert decide_expiry(alice, bob, "h-1", DEADLINE - timedelta(microseconds=1)) is None
    resolution = decide_expiry(alice, bob, "h-1", DEADLINE)

    assert resolution is not None
    assert resolution.status == "expired"
    assert resolution.received == [HoldExpired("h-1", "to", "alice", Decimal("30.00"))]
    assert (alice.held, bob.holds) == (Decimal("0.00"), {})


@pytest.mark.parametrize("late", [timedelta(0), timedelta(days=1)])
def test_a_capture_or_void_at_or_after_the_deadline_is_the_expiry(late: timedelta) -> None:
    for decide in (
        lambda a, b: decide_capture(a, b, "h-1", Decimal("1.00"), DEADLINE + late),
        lambda a, b: decide_void(a, b, "h-1", DEADLINE + late),
    ):
        alice, bob = held()
        resolution = decide(alice, bob)
        assert resolution.status == "expired"
        assert alice.balance == Decimal("100.00")


@pytest.mark.parametrize("side", ["from", "to"])
def test_an_account_in_a_pending_hold_cannot_close(side: str) -> None:
    alice, bob = opened("alice"), opened("bob")
    alice.set_overdraft_limit(Decimal("5.00"))
    decide_hold(alice, bob, "h-1", Decimal("5.00"), DEADLINE)
    account = alice if side == "from" else bob

    with pytest.raises(PendingHolds):
        account.close()
    decide_void(alice, bob, "h-1", NOW)
    account.close()


def test_a_refused_decision_does_not_touch_a_shallow_copy_of_the_account() -> None:
    """The account cache hands out shallow copies; the holds mapping must be replaced, not
    changed in place."""
    alice, bob = held()
    cached = BankAccount.from_snapshot("alice", alice.version, alice.snapshot_state())
    copy = dataclasses.replace(cached)
    decide_void(copy, bob, "h-1", NOW)

    assert set(cached.holds) == {"h-1"}


def test_pending_holds_round_trip_through_a_snapshot() -> None:
    alice, _ = held()

    restored = BankAccount.from_snapshot("alice", alice.version, alice.snapshot_state())

    assert restored == alice
    assert restored.holds["h-1"] == PendingHold(
        "from", "bob", Decimal("30.00"), DEADLINE, "order 7"
    )


def test_a_snapshot_from_before_holds_has_none_pending() -> None:
    state = opened("alice", "5.00").snapshot_state()
    del state["holds"]

    restored = BankAccount.from_snapshot("alice", 2, state, schema_version=3)

    assert restored.holds == {}


def test_hold_events_round_trip_through_their_stored_payload() -> None:
    placed = HoldPlaced("h-1", "from", "bob", Decimal("30.00"), DEADLINE)

    payload = payload_of(placed)

    assert payload["expires_at"] == "2026-11-30T08:05:00Z"
    assert "reference" not in payload
    assert event_from_payload("HoldPlaced", payload) == placed


def test_a_resolution_id_is_readable_fits_the_column_and_no_client_id_can_take_it() -> None:
    longest = "h" * 64
    ids = [resolution_id("h-1"), resolution_id(longest), resolution_id("h" * 63)]

    assert ids[0] == "h-1.resolution"
    assert all(len(i) <= 64 and not ACCOUNT_ID.matches(i) for i in ids)
    assert len(set(ids)) == 3
