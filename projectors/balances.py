"""The `balances` read model: one hash per account, the two account indexes, the summary, one
hash per transfer, and the holds (projectors/holds.py: a hash per hold, its indexes, the due set).

Transfers live here rather than in a projection of their own because this fold already knows each
account's currency, and a transfer's record is written in the same MULTI/EXEC as the two balances
it moves: a reader who sees the transfer sees both sides. A batch never splits the events of one
store transaction (catch_up.py), so both sides of a transfer are always folded together and the
summary's totals never show money in flight.

`fold` is pure (state before the batch + events -> state after); `BalancesProjection.stage` loads the
state and turns the fold into Redis writes (`RememberedBalances`, a rebuild's, keeps the state in
memory instead). An event whose stream version is not above the account's projected version has
already been applied and is skipped, so replaying a batch changes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kernel.events import (
    AccountClosed,
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    OverdraftLimitSet,
    PersonalDataErased,
    RecordedEvent,
    TransferReceived,
    TransferSent,
    UnknownEventType,
)
from kernel.money import to_cents
from kernel.personal_data import ERASED, shown
from kernel.read_model_layout import (
    BALANCES,
    SUMMARY_ACCOUNTS,
    SUMMARY_EVENTS,
    SUMMARY_OPEN_ACCOUNTS,
    TRANSFER_POSTED,
    TRANSFER_REVERSED,
    AccountBalance,
    GenerationKeys,
    StoredTransfer,
    balance_sort_member,
    summary_balance_field,
)
from projectors.change_feed import feed_of, feed_tip, stage_changes
from projectors.history import balance_stamps, stage_balance_history, stage_remembered
from projectors.holds import HOLD_EVENTS, HoldWrites, fold_hold, stage_holds
from projectors.projection import read_hashes
from projectors.remembered import AccountMemory
from projectors.scripted import ScriptedWrites

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class BalancesChange:
    after: dict[str, AccountBalance] = field(default_factory=dict)
    accounts: int = 0
    open_accounts: int = 0
    events: int = 0
    totals: Counter[str] = field(default_factory=Counter)
    """Change of the total balance per currency, in cents (a transfer's two sides cancel out)."""
    transfers: dict[str, StoredTransfer] = field(default_factory=dict)
    reversed: dict[str, StoredTransfer] = field(default_factory=dict)
    """Earlier transfers a reversal in the batch moved back, as the change feed shows them (at the
    reversal's first event); their hashes only get `StoredTransfer.reversed_fields`."""
    balance_changes: list[tuple[str, AccountBalance]] = field(default_factory=list)
    """Every account state the batch passed through, in position order (the change feed)."""
    holds: HoldWrites = field(default_factory=HoldWrites)


def fold(
    before: Mapping[str, AccountBalance | None], events: Sequence[RecordedEvent]
) -> BalancesChange:
    change = BalancesChange()
    for event in events:
        current = change.after.get(event.stream_id) or before.get(event.stream_id)
        if current is not None and event.version <= current.version:
            continue  # already projected: a replay
        updated = _apply(current, event, change)
        if updated is not None:
            change.after[event.stream_id] = updated
            change.balance_changes.append((event.stream_id, updated))
            change.events += 1
    return change


def _apply(
    current: AccountBalance | None, event: RecordedEvent, change: BalancesChange
) -> AccountBalance | None:
    try:
        domain = event.to_domain()
    except UnknownEventType:
        logger.warning("balances: skipping unknown event type %r at %d", event.type, event.position)
        return None
    version, position, at = event.version, event.position, event.recorded_at.isoformat()
    if isinstance(domain, AccountOpened):
        if current is not None:
            logger.warning(
                "balances: account %s opened twice (position %d)", event.stream_id, event.position
            )
            return None
        change.accounts += 1
        change.open_accounts += 1
        owner = shown(domain.owner)  # revealed before the fold (catch_up.py); sealed: erased
        return AccountBalance(owner, domain.currency, 0, "open", version, position, at)
    if current is None:
        logger.warning("balances: %s for unopened account %s skipped", event.type, event.stream_id)
        return None
    # One new state per event, built once: this runs for every event of every replay.
    owner, balance, status = current.owner, current.balance, current.status
    limit, held = current.overdraft_limit, current.held
    if isinstance(domain, MoneyDeposited | MoneyWithdrawn | TransferSent | TransferReceived):
        incoming = isinstance(domain, MoneyDeposited | TransferReceived)
        delta = to_cents(domain.amount) * (1 if incoming else -1)
        change.totals[current.currency] += delta
        if isinstance(domain, TransferSent | TransferReceived):
            _record_transfer(change, current, event, domain)
        balance += delta
    elif isinstance(domain, HOLD_EVENTS):
        held += fold_hold(change.holds, current, event, domain)
    elif isinstance(domain, OverdraftLimitSet):
        limit = to_cents(domain.limit)
    elif isinstance(domain, AccountClosed):
        change.open_accounts -= 1 if current.status == "open" else 0
        status = "closed"
    elif isinstance(domain, PersonalDataErased):
        owner = ERASED
    else:
        return None
    return AccountBalance(
        owner, current.currency, balance, status, version, position, at, limit, held
    )


def _record_transfer(
    change: BalancesChange,
    account: AccountBalance,
    event: RecordedEvent,
    side: TransferSent | TransferReceived,
) -> None:
    """Either side describes the whole transfer; the later one sets its position."""
    sent = isinstance(side, TransferSent)
    earlier = change.transfers.get(side.transfer_id)
    transfer = StoredTransfer(
        from_account=event.stream_id if sent else side.counterparty,
        to_account=side.counterparty if sent else event.stream_id,
        amount=to_cents(side.amount),
        currency=account.currency,
        reference=side.reference,
        status=TRANSFER_POSTED,
        position=max(event.position, earlier.position if earlier else 0),
        recorded_at=earlier.recorded_at if earlier else event.recorded_at.isoformat(),
        reversal_of=side.reversal_of,
    )
    change.transfers[side.transfer_id] = transfer
    if side.reversal_of is not None and earlier is None:
        # The first side flips the original, the later one completes the reversal: two positions,
        # so the feed's two `transfer` changes have distinct ids (kernel/change_feed.py).
        change.reversed[side.reversal_of] = replace(
            transfer,
            from_account=transfer.to_account,
            to_account=transfer.from_account,
            reference=None,
            status=TRANSFER_REVERSED,
            reversal_of=None,
            reversed_by=side.transfer_id,
        )


def _queue_writes(
    tx: Pipeline | ScriptedWrites,
    keys: GenerationKeys,
    before: Mapping[str, AccountBalance | None],
    change: BalancesChange,
    *,
    known: bool = False,
) -> None:
    """Queue the batch's writes but the history and the feed: the accounts (their indexes moved
    by one ZREM and one ZADD for the whole batch), the summary, transfers and holds. With `known`
    (`before` is exactly what the account hashes hold) only the fields that changed are written;
    otherwise whole hashes, which also fills fields that hashes written by older code lack."""
    new_ids: dict[str, int] = {}
    old_places: list[str] = []
    new_places: dict[str, int] = {}
    for account_id, after in change.after.items():
        previous = before.get(account_id)
        fields = after.to_hash()
        if known and previous is not None:
            stored = previous.to_hash()
            fields = {name: value for name, value in fields.items() if stored[name] != value}
        tx.hset(keys.account(account_id), mapping=fields)
        if previous is None:
            new_ids[account_id] = 0
        elif previous.balance != after.balance:
            old_places.append(balance_sort_member(previous.balance, account_id))
        if previous is None or previous.balance != after.balance:
            new_places[balance_sort_member(after.balance, account_id)] = 0
    if new_ids:
        tx.zadd(keys.by_id, new_ids)
    if old_places:
        tx.zrem(keys.by_balance, *old_places)
    if new_places:
        tx.zadd(keys.by_balance, new_places)
    for name, delta in (
        (SUMMARY_ACCOUNTS, change.accounts),
        (SUMMARY_OPEN_ACCOUNTS, change.open_accounts),
        (SUMMARY_EVENTS, change.events),
    ):
        if delta:
            tx.hincrby(keys.summary, name, delta)
    for currency, cents in change.totals.items():
        tx.hincrby(keys.summary, summary_balance_field(currency), cents)
    for transfer_id, transfer in change.transfers.items():
        tx.hset(keys.transfer(transfer_id), mapping=transfer.to_hash())
    stage_holds(tx, keys, change.holds)
    for transfer_id, flipped in change.reversed.items():  # after: the original may be new too
        assert flipped.reversed_by is not None
        mapping = StoredTransfer.reversed_fields(flipped.reversed_by)
        tx.hset(keys.transfer(transfer_id), mapping=mapping)


class BalancesProjection:
    name = BALANCES

    async def stage(
        self,
        reader: Redis,
        tx: Pipeline,
        keys: GenerationKeys,
        events: Sequence[RecordedEvent],
        *,
        feed: bool,
    ) -> int:
        rows = await read_hashes(reader, events, keys.account)
        before = {aid: AccountBalance.from_hash(row) for aid, row in rows.items()}
        change = fold(before, events)
        _queue_writes(tx, keys, before, change)
        await stage_balance_history(reader, tx, keys, change.balance_changes, events)
        if feed:
            tip = await feed_tip(reader, keys)
            changes = feed_of(change.balance_changes, change.transfers, change.reversed)
            stage_changes(tx, keys, changes, tip)
        return change.events


class RememberedBalances:
    """`balances` for a rebuild's scratch generation, whose only writer is the rebuild: each
    account's state and latest history score come from memory (`AccountMemory`, as the last
    committed batch left them) instead of a read of Redis per batch. Same fold, same writes."""

    name = BALANCES

    def __init__(self) -> None:
        self.memory: AccountMemory[AccountBalance] = AccountMemory()

    async def stage(
        self,
        reader: Redis,
        tx: Pipeline,
        keys: GenerationKeys,
        events: Sequence[RecordedEvent],
        *,
        feed: bool,
    ) -> int:
        if feed:
            raise ValueError("only scratch generations are remembered, and they write no feed")
        states = self.memory.states
        change = fold(states, events)
        writes = ScriptedWrites()
        _queue_writes(writes, keys, states, change, known=True)
        stamps = balance_stamps(change.balance_changes, events)
        latest = stage_remembered(writes, keys.history, stamps, self.memory.latest)
        writes.queue_on(tx)
        self.memory.staged(events[-1].position, change.after, latest)
        return change.events
