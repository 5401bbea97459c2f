"""The pure folds with transfers and overdraft limits: what the balances and statements projections
decide for `TransferSent`, `TransferReceived` and `OverdraftLimitSet` (no Redis here)."""

from __future__ import annotations

from decimal import Decimal

from kernel.events import (
    MoneyDeposited,
    OverdraftLimitSet,
    RecordedEvent,
    TransferReceived,
    TransferSent,
)
from kernel.read_model_layout import StoredTransfer
from projectors import balances, statements
from tests.unit.test_projection_folds import AT, History, deposit, opened, withdrawal


def transfer(
    h: History, source: str, target: str, amount: str, transfer_id: str = "t-1", **extra: str
) -> list[RecordedEvent]:
    """Both sides, recorded one after the other as one append would number them."""
    money = Decimal(amount)
    return [
        h.record(source, TransferSent(transfer_id, target, money, extra.get("reference"))),
        h.record(target, TransferReceived(transfer_id, source, money, extra.get("reference"))),
    ]


def limit(amount: str) -> OverdraftLimitSet:
    return OverdraftLimitSet(limit=Decimal(amount))


def test_a_transfer_moves_money_from_the_sender_to_the_receiver() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("b", opened()), h.record("a", deposit("10.00"))]
    batch += transfer(h, "a", "b", "2.50")

    change = balances.fold({"a": None, "b": None}, batch)

    a, b = change.after["a"], change.after["b"]
    assert (a.balance, a.version, a.position) == (750, 3, 4)
    assert (b.balance, b.version, b.position) == (250, 2, 5)


def test_a_transfer_leaves_the_summary_totals_unchanged_and_counts_both_events() -> None:
    h = History()
    opening = [h.record("a", opened()), h.record("b", opened()), h.record("a", deposit("10.00"))]
    before = balances.fold({"a": None, "b": None}, opening).after

    change = balances.fold(before, transfer(h, "a", "b", "4.00"))

    assert change.totals == {"USD": 0}
    assert (change.accounts, change.open_accounts, change.events) == (0, 0, 2)


def test_an_overdraft_limit_sets_the_limit_and_available_is_balance_plus_limit() -> None:
    h = History()
    batch = [
        h.record("a", opened()),
        h.record("a", limit("100.00")),
        h.record("a", deposit("5.00")),
    ]
    batch += [h.record("b", opened()), *transfer(h, "a", "b", "30.00")]

    change = balances.fold({"a": None, "b": None}, batch)

    a = change.after["a"]
    assert (a.balance, a.overdraft_limit, a.available, a.version) == (-2500, 10000, 7500, 4)
    assert change.after["b"].overdraft_limit == 0
    assert change.after["b"].available == 3000


def test_a_later_overdraft_limit_replaces_the_earlier_one_and_moves_no_money() -> None:
    h = History()
    first = balances.fold({"a": None}, [h.record("a", opened()), h.record("a", limit("50.00"))])

    change = balances.fold(first.after, [h.record("a", limit("0.00"))])

    assert (change.after["a"].overdraft_limit, change.after["a"].balance) == (0, 0)
    assert (change.totals, change.events) == ({}, 1)


def test_the_balances_fold_records_the_transfer_with_the_position_of_its_last_side() -> None:
    h = History()
    batch = [h.record("a", opened(currency="EUR")), h.record("b", opened(currency="EUR"))]
    batch += transfer(h, "a", "b", "1.25", "t-9", reference="rent")

    change = balances.fold({"a": None, "b": None}, batch)

    assert change.transfers == {
        "t-9": StoredTransfer(
            from_account="a",
            to_account="b",
            amount=125,
            currency="EUR",
            reference="rent",
            status="posted",
            position=4,
            recorded_at=AT.isoformat(),
        )
    }


def test_either_side_alone_describes_the_transfer_the_same_way() -> None:
    h = History()
    opening = [h.record("a", opened()), h.record("b", opened())]
    before = balances.fold({"a": None, "b": None}, opening).after
    sent, received = transfer(h, "a", "b", "3.00")

    from_sender = balances.fold(before, [sent]).transfers["t-1"]
    from_receiver = balances.fold(before, [received]).transfers["t-1"]

    assert (from_sender.from_account, from_sender.to_account) == ("a", "b")
    assert (from_receiver.from_account, from_receiver.to_account) == ("a", "b")
    assert from_sender.amount == from_receiver.amount == 300


def test_a_replayed_transfer_changes_nothing_and_records_nothing() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("b", opened()), *transfer(h, "a", "b", "1.00")]
    done = balances.fold({"a": None, "b": None}, batch)

    again = balances.fold(done.after, batch)

    assert (again.after, again.transfers, again.totals, again.events) == ({}, {}, {}, 0)


def test_statement_entries_of_a_transfer_name_it_and_chain_balance_after_on_both_sides() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("b", opened()), h.record("a", deposit("10.00"))]
    batch += transfer(h, "a", "b", "2.50", "t-7", reference="lunch")
    batch += [h.record("b", withdrawal("1.00"))]

    change = statements.fold({"a": None, "b": None}, batch)

    a_entries = [
        (e.type, e.amount, e.balance_after, e.transfer_id, e.counterparty, e.reference)
        for e in change.entries["a"]
    ]
    assert a_entries == [
        ("AccountOpened", "0.00", "0.00", None, None, None),
        ("MoneyDeposited", "10.00", "10.00", None, None, None),
        ("TransferSent", "-2.50", "7.50", "t-7", "b", "lunch"),
    ]
    b_entries = [
        (e.type, e.amount, e.balance_after, e.transfer_id, e.counterparty, e.reference)
        for e in change.entries["b"]
    ]
    assert b_entries == [
        ("AccountOpened", "0.00", "0.00", None, None, None),
        ("TransferReceived", "2.50", "2.50", "t-7", "a", "lunch"),
        ("MoneyWithdrawn", "-1.00", "1.50", None, None, None),
    ]


def test_deposits_and_withdrawals_show_their_reference_in_the_statement() -> None:
    h = History()
    batch = [
        h.record("a", opened()),
        h.record("a", MoneyDeposited(Decimal("5.00"), reference="salary")),
        h.record("a", withdrawal("1.00")),
    ]

    change = statements.fold({"a": None}, batch)

    assert [e.reference for e in change.entries["a"]] == [None, "salary", None]


def test_an_overdraft_limit_makes_a_zero_entry_and_the_balance_after_goes_below_zero() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("a", limit("20.00")), h.record("b", opened())]
    batch += transfer(h, "a", "b", "15.00")

    change = statements.fold({"a": None, "b": None}, batch)

    assert [(e.type, e.amount, e.balance_after) for e in change.entries["a"]] == [
        ("AccountOpened", "0.00", "0.00"),
        ("OverdraftLimitSet", "0.00", "0.00"),
        ("TransferSent", "-15.00", "-15.00"),
    ]
    assert change.running["a"] == statements.Running(balance=-1500, version=3)


def reversal(
    h: History, original: str, source: str, target: str, amount: str
) -> list[RecordedEvent]:
    """Both sides of the reversal of `original` (source: the original's receiver)."""
    money, rid = Decimal(amount), f"{original}.reversal"
    return [
        h.record(source, TransferSent(rid, target, money, None, original)),
        h.record(target, TransferReceived(rid, source, money, None, original)),
    ]


def test_a_reversal_records_itself_and_flips_the_original_to_reversed_at_its_first_event() -> None:
    h = History()
    opening = [h.record("a", opened()), h.record("b", opened()), h.record("a", deposit("10.00"))]
    before = balances.fold({"a": None, "b": None}, [*opening, *transfer(h, "a", "b", "4.00")]).after
    batch = reversal(h, "t-1", "b", "a", "4.00")

    change = balances.fold(before, batch)

    assert (change.after["a"].balance, change.after["b"].balance) == (1000, 0)
    record = change.transfers["t-1.reversal"]
    assert (record.from_account, record.to_account, record.amount) == ("b", "a", 400)
    assert (record.status, record.reversal_of, record.position) == ("posted", "t-1", 7)
    flipped = change.reversed["t-1"]
    assert (flipped.from_account, flipped.to_account, flipped.amount) == ("a", "b", 400)
    assert (flipped.status, flipped.reversed_by, flipped.position) == (
        "reversed",
        "t-1.reversal",
        6,
    )
    assert StoredTransfer.reversed_fields("t-1.reversal") == {
        "status": "reversed",
        "reversed_by": "t-1.reversal",
    }


def test_a_transfer_and_its_reversal_in_one_batch_both_appear_and_a_replay_flips_nothing() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("b", opened()), h.record("a", deposit("10.00"))]
    batch += [*transfer(h, "a", "b", "4.00"), *reversal(h, "t-1", "b", "a", "4.00")]

    change = balances.fold({"a": None, "b": None}, batch)
    again = balances.fold(change.after, batch)

    assert set(change.transfers) == {"t-1", "t-1.reversal"}
    assert set(change.reversed) == {"t-1"}
    assert (again.transfers, again.reversed) == ({}, {})


def test_statement_entries_of_a_reversal_name_the_transfer_it_moves_back() -> None:
    h = History()
    batch = [h.record("a", opened()), h.record("b", opened()), h.record("a", deposit("10.00"))]
    batch += [*transfer(h, "a", "b", "4.00"), *reversal(h, "t-1", "b", "a", "4.00")]

    change = statements.fold({"a": None, "b": None}, batch)

    assert [(e.type, e.amount, e.transfer_id, e.reversal_of) for e in change.entries["a"][-2:]] == [
        ("TransferSent", "-4.00", "t-1", None),
        ("TransferReceived", "4.00", "t-1.reversal", "t-1"),
    ]
    assert change.entries["b"][-1].reversal_of == "t-1"
