"""Deciding holds (two-phase transfers): placing one on two accounts, and resolving it once.

Pure, like transfer.py: given the two rebuilt accounts and the server's clock `now`, each function
refuses or returns the events of each side, which the caller appends in one store transaction.

A hold reserves money on the sending ("from") account: its `held` grows, so its `available`
(balance + overdraft limit - held) shrinks, and the balance does not move. It is resolved exactly
once: captured (part or all of it moves as a transfer with transfer id = hold id, the rest goes
back), voided (all goes back) or expired (all goes back, at `expires_at`). A capture or void asked
at or after `expires_at` does not win: its decision is the expiry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from kernel.events import (
    DomainEvent,
    HoldCaptured,
    HoldExpired,
    HoldPlaced,
    HoldVoided,
    TransferReceived,
    TransferSent,
)
from kernel.identifiers import ACCOUNT_ID
from kernel.money import ZERO, format_money
from write_side.domain.account import BankAccount, PendingHold
from write_side.domain.errors import (
    AccountNotFound,
    AmountExceedsHold,
    CurrencyMismatch,
    HoldNotFound,
    SameAccount,
)

CAPTURED = "captured"
VOIDED = "voided"
EXPIRED = "expired"
PENDING = "pending"


RESOLUTION_SUFFIX = ".resolution"


def resolution_id(hold_id: str) -> str:
    """The transfers-table key of a hold's resolution: `h-1` → `h-1.resolution`, or for an id too
    long for that `<32 hex>.long.resolution` (like reversal ids, domain/reversal.py). '.' is
    outside the id alphabet, so no client's transfer or hold id can take it."""
    readable = f"{hold_id}{RESOLUTION_SUFFIX}"
    if len(readable) <= ACCOUNT_ID.max_length:
        return readable
    digest = hashlib.sha256(hold_id.encode()).hexdigest()[:32]
    return f"{digest}.long{RESOLUTION_SUFFIX}"


@dataclass(frozen=True, slots=True)
class HoldEvents:
    """What one decision appends: `sent` on the "from" account, `received` on the "to" one."""

    sent: list[DomainEvent]
    received: list[DomainEvent]


@dataclass(frozen=True, slots=True)
class Resolution(HoldEvents):
    status: str
    captured: Decimal
    released: Decimal


def _recorded(account: BankAccount, *events: DomainEvent) -> list[DomainEvent]:
    for event in events:
        account.apply(event)
    return list(events)


def decide_hold(
    source: BankAccount,
    target: BankAccount,
    hold_id: str,
    amount: Decimal,
    expires_at: datetime,
    reference: str | None = None,
) -> HoldEvents:
    """The refusals of a transfer, in its order: same account, unknown, closed, currencies, funds
    (here: what is available once earlier holds are taken off)."""
    if source.account_id == target.account_id:
        raise SameAccount("a hold needs two different accounts")
    for account in (source, target):
        if account.version == 0:
            raise AccountNotFound(f"account {account.account_id!r} does not exist")
    source.check_open()
    target.check_open()
    if source.currency != target.currency:
        raise CurrencyMismatch(
            f"account {source.account_id!r} holds {source.currency} and account "
            f"{target.account_id!r} holds {target.currency}"
        )
    source.check_funds(amount)
    to, sender = target.account_id, source.account_id
    return HoldEvents(
        _recorded(source, HoldPlaced(hold_id, "from", to, amount, expires_at, reference)),
        _recorded(target, HoldPlaced(hold_id, "to", sender, amount, expires_at, reference)),
    )


def pending_hold(source: BankAccount, hold_id: str) -> PendingHold:
    """The hold as its sending account knows it; HoldNotFound when it is not pending there."""
    hold = source.holds.get(hold_id)
    if hold is None or hold.side != "from":
        raise HoldNotFound(f"hold {hold_id!r} is not pending on account {source.account_id!r}")
    return hold


def is_due(hold: PendingHold, now: datetime) -> bool:
    return now >= hold.expires_at


def decide_capture(
    source: BankAccount, target: BankAccount, hold_id: str, amount: Decimal | None, now: datetime
) -> Resolution:
    """All of the hold when `amount` is None; at most what it holds. Due: the expiry instead."""
    hold = pending_hold(source, hold_id)
    if is_due(hold, now):
        return _expiry(source, target, hold_id, hold)
    captured = hold.amount if amount is None else amount
    if captured > hold.amount:
        raise AmountExceedsHold(
            f"cannot capture {format_money(captured)}: hold {hold_id!r} holds "
            f"{format_money(hold.amount)}"
        )
    released = hold.amount - captured
    to, sender, ref = target.account_id, source.account_id, hold.reference
    # The transfer first, the hold's resolution last: the hold's last event is the append's last,
    # so its position in the read model is the answer's read-your-writes position.
    sent = _recorded(
        source,
        TransferSent(hold_id, to, captured, ref),
        HoldCaptured(hold_id, "from", to, captured, released),
    )
    received = _recorded(
        target,
        TransferReceived(hold_id, sender, captured, ref),
        HoldCaptured(hold_id, "to", sender, captured, released),
    )
    return Resolution(sent, received, CAPTURED, captured, released)


def decide_void(
    source: BankAccount, target: BankAccount, hold_id: str, now: datetime
) -> Resolution:
    hold = pending_hold(source, hold_id)
    if is_due(hold, now):
        return _expiry(source, target, hold_id, hold)
    sent = _recorded(source, HoldVoided(hold_id, "from", target.account_id, hold.amount))
    received = _recorded(target, HoldVoided(hold_id, "to", source.account_id, hold.amount))
    return Resolution(sent, received, VOIDED, ZERO, hold.amount)


def decide_expiry(
    source: BankAccount, target: BankAccount, hold_id: str, now: datetime
) -> Resolution | None:
    """The expiry of a due hold; None while it is not due yet."""
    hold = pending_hold(source, hold_id)
    if not is_due(hold, now):
        return None
    return _expiry(source, target, hold_id, hold)


def _expiry(
    source: BankAccount, target: BankAccount, hold_id: str, hold: PendingHold
) -> Resolution:
    sent = _recorded(source, HoldExpired(hold_id, "from", target.account_id, hold.amount))
    received = _recorded(target, HoldExpired(hold_id, "to", source.account_id, hold.amount))
    return Resolution(sent, received, EXPIRED, ZERO, hold.amount)
