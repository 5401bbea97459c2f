"""The time indexes' scores and members (projectors/history.py, kernel/read_model_layout.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.read_model_layout import (
    AccountBalance,
    epoch_micros,
    history_member,
    instant_of,
    state_from_history,
    statement_times_member,
)
from projectors.history import scored

T0 = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)


def at(microseconds: int) -> datetime:
    return T0 + timedelta(microseconds=microseconds)


def test_scores_are_epoch_microseconds_exactly() -> None:
    instant = datetime(2026, 1, 31, 9, 30, 0, 123_457, tzinfo=UTC)

    assert epoch_micros(instant) == 1_769_851_800_123_457
    assert instant_of(epoch_micros(instant)) == instant
    assert float(epoch_micros(datetime(2255, 1, 1, tzinfo=UTC))) < 2**53  # exact in a score


def test_an_account_whose_clock_stepped_back_keeps_its_events_in_version_order() -> None:
    stamps = [("a", "v1", at(10)), ("a", "v2", at(5)), ("a", "v3", at(7)), ("a", "v4", at(12))]

    added = scored(stamps, {"a": None})

    base = epoch_micros(T0)
    assert added == {"a": {"v1": base + 10, "v2": base + 10, "v3": base + 10, "v4": base + 12}}


def test_the_clamp_continues_from_the_score_before_the_batch_per_account() -> None:
    stamps = [("a", "a3", at(1)), ("b", "b1", at(2)), ("a", "a4", at(9))]

    added = scored(stamps, {"a": epoch_micros(at(5)), "b": None})

    base = epoch_micros(T0)
    assert added == {"a": {"a3": base + 5, "a4": base + 9}, "b": {"b1": base + 2}}


def _state(position: int, version: int) -> AccountBalance:
    return AccountBalance("O", "EUR", 1250, "open", version, position, T0.isoformat(), 500)


def test_members_with_one_score_order_by_position_across_digit_counts() -> None:
    members = [history_member(_state(p, v)) for v, p in enumerate([9, 10, 99, 100, 12345], 1)]

    assert sorted(members) == members
    assert sorted([statement_times_member(v) for v in (9, 10, 100)]) == [
        statement_times_member(v) for v in (9, 10, 100)
    ]


def test_a_member_gives_back_the_state_it_recorded_with_todays_owner_and_currency() -> None:
    then = AccountBalance("Old name", "EUR", -300, "closed", 7, 41, T0.isoformat(), 500)
    now = AccountBalance("[erased]", "EUR", 900, "closed", 9, 60, at(99).isoformat(), 0)

    restored = state_from_history(now, history_member(then), epoch_micros(T0))

    assert restored == AccountBalance("[erased]", "EUR", -300, "closed", 7, 41, T0.isoformat(), 500)


def test_a_replayed_state_makes_the_identical_member() -> None:
    assert history_member(_state(41, 7)) == history_member(_state(41, 7))
