"""The `statements` read model: every money movement and lifecycle event of an account, in order.

A transfer makes an entry on each side (signed: negative on the sending one) naming the transfer
and the other account; a new overdraft limit makes a "0.00" entry, like opening and closing, so
every event of the account has its line and the versions have no gaps. A hold event makes an entry
on each side too, with the hold id as `transfer_id`, an `amount` of "0.00" and an unchanged
`balance_after`, and the amount held or released as `hold_amount` (`_held_or_released`).

Entries live in a sorted set per account, scored by stream version, so pages newest-first are a
range query. The projection keeps its own running balance per account (it does not read the
balances projection: each read model can be rebuilt alone) to write `balance_after` on each entry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    HoldCaptured,
    HoldExpired,
    HoldPlaced,
    HoldVoided,
    MoneyDeposited,
    MoneyWithdrawn,
    OverdraftLimitSet,
    PersonalDataErased,
    RecordedEvent,
    TransferReceived,
    TransferSent,
    UnknownEventType,
)
from kernel.money import format_cents, to_cents
from kernel.read_model_layout import STATEMENTS, GenerationKeys, Running, StatementEntry
from projectors.history import stage_remembered, stage_statement_times, statement_stamps
from projectors.projection import read_hashes
from projectors.remembered import AccountMemory
from projectors.scripted import ScriptedWrites

logger = logging.getLogger(__name__)


_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class StatementsChange:
    running: dict[str, Running] = field(default_factory=dict)
    entries: dict[str, list[StatementEntry]] = field(default_factory=dict)
    events: int = 0


def fold(before: Mapping[str, Running | None], events: Sequence[RecordedEvent]) -> StatementsChange:
    change = StatementsChange()
    for event in events:
        current = change.running.get(event.stream_id) or before.get(event.stream_id)
        if current is not None and event.version <= current.version:
            continue  # already projected: a replay
        domain = _decode(event)
        delta = None if domain is None else _amount_of(current, event, domain)
        if domain is None or delta is None:
            continue
        balance = (current.balance if current else 0) + delta
        shown = _held_or_released(domain)
        change.running[event.stream_id] = Running(balance, event.version)
        change.entries.setdefault(event.stream_id, []).append(
            StatementEntry(
                version=event.version,
                event_id=str(event.event_id),
                type=event.type,
                amount=format_cents(delta),
                balance_after=format_cents(balance),
                recorded_at=event.recorded_at.isoformat(),
                reference=getattr(domain, "reference", None),
                transfer_id=getattr(domain, "transfer_id", getattr(domain, "hold_id", None)),
                counterparty=getattr(domain, "counterparty", None),
                reversal_of=getattr(domain, "reversal_of", None),
                hold_amount=None if shown is None else format_cents(shown),
            )
        )
        change.events += 1
    return change


def _decode(event: RecordedEvent) -> DomainEvent | None:
    try:
        return event.to_domain()
    except UnknownEventType:
        logger.warning(
            "statements: skipping unknown event type %r at %d", event.type, event.position
        )
        return None


def _amount_of(current: Running | None, event: RecordedEvent, domain: DomainEvent) -> int | None:
    """The signed amount in cents the event moves, or None when it makes no entry."""
    if isinstance(domain, AccountOpened):
        if current is None:
            return 0
        logger.warning(
            "statements: account %s opened twice (position %d)", event.stream_id, event.position
        )
        return None
    if current is None:
        logger.warning(
            "statements: %s for unopened account %s skipped", event.type, event.stream_id
        )
        return None
    if isinstance(domain, MoneyDeposited | TransferReceived):
        return to_cents(domain.amount)
    if isinstance(domain, MoneyWithdrawn | TransferSent):
        return -to_cents(domain.amount)
    if isinstance(
        domain,
        AccountClosed
        | OverdraftLimitSet
        | PersonalDataErased
        | HoldPlaced
        | HoldCaptured
        | HoldVoided
        | HoldExpired,
    ):
        return 0
    return None


def _held_or_released(domain: DomainEvent) -> int | None:
    """A hold entry's `hold_amount` in cents: held (HoldPlaced), or released without moving (the rest
    of a capture, all of a void or expiry). Its balance does not move; a capture's money moves in
    the TransferSent/TransferReceived entry that follows it. None for every other event."""
    if isinstance(domain, HoldPlaced):
        return to_cents(domain.amount)
    if isinstance(domain, HoldCaptured):
        return to_cents(domain.released_amount)
    if isinstance(domain, HoldVoided | HoldExpired):
        return to_cents(domain.amount)
    return None


def _queue_writes(
    tx: Pipeline | ScriptedWrites, keys: GenerationKeys, change: StatementsChange
) -> None:
    """Queue each account's running balance and new entries (the time index apart)."""
    for account_id, running in change.running.items():
        tx.hset(keys.running(account_id), mapping=running.to_hash())
        members = {_encode(entry): entry.version for entry in change.entries[account_id]}
        tx.zadd(keys.statement(account_id), members)


class StatementsProjection:
    name = STATEMENTS

    async def stage(
        self,
        reader: Redis,
        tx: Pipeline,
        keys: GenerationKeys,
        events: Sequence[RecordedEvent],
        *,
        feed: bool,
    ) -> int:
        rows = await read_hashes(reader, events, keys.running)
        before = {aid: Running.from_hash(row) for aid, row in rows.items()}
        change = fold(before, events)
        _queue_writes(tx, keys, change)
        await stage_statement_times(reader, tx, keys, change.entries, events)
        return change.events


class RememberedStatements:
    """`statements` for a rebuild's scratch generation, whose only writer is the rebuild: each
    account's running balance and latest time-index score come from memory (`AccountMemory`)
    instead of a read of Redis per batch. Same fold, same writes."""

    name = STATEMENTS

    def __init__(self) -> None:
        self.memory: AccountMemory[Running] = AccountMemory()

    async def stage(
        self,
        reader: Redis,
        tx: Pipeline,
        keys: GenerationKeys,
        events: Sequence[RecordedEvent],
        *,
        feed: bool,
    ) -> int:
        change = fold(self.memory.states, events)
        writes = ScriptedWrites()
        _queue_writes(writes, keys, change)
        stamps = statement_stamps(change.entries, events)
        latest = stage_remembered(writes, keys.statement_times, stamps, self.memory.latest)
        writes.queue_on(tx)
        self.memory.staged(events[-1].position, change.running, latest)
        return change.events
