"""The holds part of the balances read model: what each hold event does to an account's `held`,
to the hold's hash, to the per-account indexes and to the due set the expiry loop reads.

Kept in the balances projection (like transfers) so that a hold's hash and the `held` of its
accounts change in one MULTI/EXEC: a reader who sees a hold captured sees the money moved.
`fold_hold` is pure; `stage_holds` turns what it collected into Redis writes, placements before
resolutions, so a hold placed and resolved within one batch ends up resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio.client import Pipeline

from kernel.events import HoldCaptured, HoldExpired, HoldPlaced, HoldVoided, RecordedEvent
from kernel.money import to_cents
from kernel.read_model_layout import (
    HOLD_PENDING,
    AccountBalance,
    GenerationKeys,
    StoredHash,
    StoredHold,
    hold_resolution_fields,
)
from projectors.scripted import ScriptedWrites

HoldEvent = HoldPlaced | HoldCaptured | HoldVoided | HoldExpired
HOLD_EVENTS = (HoldPlaced, HoldCaptured, HoldVoided, HoldExpired)

_STATUS = {HoldCaptured: "captured", HoldVoided: "voided", HoldExpired: "expired"}


@dataclass(slots=True)
class HoldWrites:
    fields: dict[str, StoredHash] = field(default_factory=dict)
    """Per hold id, the hash fields to write (merged in event order)."""
    placed: list[tuple[str, str, int, float]] = field(default_factory=list)
    """(hold id, account id, placement position, expires_at in Unix seconds) per side."""
    resolved: list[tuple[str, str]] = field(default_factory=list)
    """(hold id, account id) per side."""


def fold_hold(
    writes: HoldWrites, account: AccountBalance, event: RecordedEvent, hold: HoldEvent
) -> int:
    """Collect the writes of one side's hold event; return the change of the account's `held`."""
    hold_id, sending = hold.hold_id, hold.side == "from"
    fields = writes.fields.setdefault(hold_id, {})
    if isinstance(hold, HoldPlaced):
        stored = StoredHold(
            from_account=event.stream_id if sending else hold.counterparty,
            to_account=hold.counterparty if sending else event.stream_id,
            amount=to_cents(hold.amount),
            captured_amount=0,
            currency=account.currency,
            status=HOLD_PENDING,
            expires_at=hold.expires_at.isoformat(),
            position=event.position,
            reference=hold.reference,
        )
        fields.update(stored.to_hash())
        due = hold.expires_at.timestamp()
        writes.placed.append((hold_id, event.stream_id, event.position, due))
        return to_cents(hold.amount) if sending else 0
    captured = to_cents(hold.captured_amount) if isinstance(hold, HoldCaptured) else 0
    fields.update(hold_resolution_fields(_STATUS[type(hold)], captured, event.position))
    writes.resolved.append((hold_id, event.stream_id))
    if not sending:
        return 0
    if isinstance(hold, HoldCaptured):
        return -to_cents(hold.captured_amount + hold.released_amount)
    return -to_cents(hold.amount)


def stage_holds(tx: Pipeline | ScriptedWrites, keys: GenerationKeys, writes: HoldWrites) -> None:
    for hold_id, fields in writes.fields.items():
        tx.hset(keys.hold(hold_id), mapping=fields)
    for hold_id, account_id, position, due in writes.placed:
        tx.zadd(keys.holds_of(account_id), {hold_id: position})
        tx.zadd(keys.pending_holds_of(account_id), {hold_id: position})
        tx.zadd(keys.holds_due, {hold_id: due})
    for hold_id, account_id in writes.resolved:
        tx.zrem(keys.pending_holds_of(account_id), hold_id)
        tx.zrem(keys.holds_due, hold_id)
