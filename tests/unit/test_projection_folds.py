"""The pure folds of the read models: state before a batch + the batch's events -> state after.

No Redis here: the folds decide everything a projection writes, and the integration tests check
that those decisions reach Redis.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    MoneyDeposited,
    MoneyWithdrawn,
    RecordedEvent,
    event_type,
    payload_of,
)
from projectors import balances, statements

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class History:
    """Numbers events as the store would: a version per account, one global position."""

    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}

    def record(self, account_id: str, event: DomainEvent) -> RecordedEvent:
        self.position += 1
        self.versions[account_id] = self.versions.get(account_id, 0) + 1
        return RecordedEvent(
            self.position,
            account_id,
            self.versions[account_id],
            uuid.uuid4(),
            event_type(event),
            payload_of(event),
            {},
            2,
            AT,
        )


def opened(owner: str = "Ann", currency: str = "USD") -> AccountOpened:
    return AccountOpened(owner=owner, currency=currency)


def deposit(amount: str) -> MoneyDeposited:
    return MoneyDeposited(amount=Decimal(amount))


def withdrawal(amount: str) -> MoneyWithdrawn:
    return MoneyWithdrawn(amount=Decimal(amount))


def test_balances_fold_tracks_balance_version_status_and_the_summary_deltas() -> None:
    h = History()
    batch = [
        h.record("a", opened()),
        h.record("b", opened(currency="EUR")),
        h.record("a", deposit("10.00")),
        h.record("a", withdrawal("2.50")),
        h.record("b", deposit("1.00")),
        h.record("b", withdrawal("1.00")),
        h.record("b", AccountClosed()),
    ]
    change = balances.fold({"a": None, "b": None}, batch)

    a, b = change.after["a"], change.after["b"]
    assert (a.balance, a.version, a.status, a.position) == (750, 3, "open", 4)
    assert (b.balance, b.version, b.status) == (0, 4, "closed")
    assert (change.accounts, change.open_accounts, change.events) == (2, 1, 7)
    assert change.totals == {"USD": 750, "EUR": 0}


def test_balances_fold_continues_from_the_state_before_the_batch() -> None:
    h = History()
    first = balances.fold({"a": None}, [h.record("a", opened()), h.record("a", deposit("5.00"))])
    change = balances.fold(first.after, [h.record("a", withdrawal("0.01"))])
    assert change.after["a"].balance == 499
    assert (change.accounts, change.events, change.totals["USD"]) == (0, 1, -1)


def test_balances_fold_skips_events_already_projected_so_a_replayed_batch_changes_nothing() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("a", deposit("5.00"))]
    done = balances.fold({"a": None}, batch)
    again = balances.fold(done.after, batch)
    assert (again.after, again.events, again.totals) == ({}, 0, {})


def test_balances_fold_ignores_money_for_an_account_never_opened() -> None:
    h = History()
    change = balances.fold({"ghost": None}, [h.record("ghost", deposit("1.00"))])
    assert (change.after, change.events) == ({}, 0)


def test_statements_fold_writes_signed_amounts_and_a_chained_balance_after() -> None:
    h = History()
    batch = [
        h.record("a", opened()),
        h.record("a", deposit("10.00")),
        h.record("a", withdrawal("0.25")),
        h.record("a", withdrawal("9.75")),
        h.record("a", AccountClosed()),
    ]
    change = statements.fold({"a": None}, batch)
    entries = change.entries["a"]
    assert [(e.type, e.amount, e.balance_after) for e in entries] == [
        ("AccountOpened", "0.00", "0.00"),
        ("MoneyDeposited", "10.00", "10.00"),
        ("MoneyWithdrawn", "-0.25", "9.75"),
        ("MoneyWithdrawn", "-9.75", "0.00"),
        ("AccountClosed", "0.00", "0.00"),
    ]
    assert [e.version for e in entries] == [1, 2, 3, 4, 5]
    assert change.running["a"] == statements.Running(balance=0, version=5)


def test_statements_fold_continues_the_running_balance_and_skips_replays() -> None:
    h = History()
    opening = [h.record("a", opened()), h.record("a", deposit("3.00"))]
    first = statements.fold({"a": None}, opening)
    later = [h.record("a", deposit("0.50"))]
    change = statements.fold(first.running, [*opening, *later])
    assert [(e.version, e.balance_after) for e in change.entries["a"]] == [(3, "3.50")]
    assert change.events == 1
