"""Writes the change feed (`kernel/change_feed.py`) into the batch's own MULTI/EXEC.

Nothing is published before the batch commits and nothing the batch wrote goes unpublished: the
XADDs are queued on the same transaction as the read model's writes and its checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kernel.change_feed import (
    BALANCE,
    META_FEED_FROM,
    META_FEED_TIP,
    PROJECTION,
    STREAM_MAXLEN,
    TRANSFER,
    BalanceChange,
    Change,
    ChangeId,
    ProjectionChange,
    TransferChange,
    encode,
)
from kernel.money import format_money, from_cents
from kernel.read_model_layout import AccountBalance, GenerationKeys, StoredTransfer


def _money(cents: int) -> str:
    return format_money(from_cents(cents))


def feed_of(
    balances: Iterable[tuple[str, AccountBalance]],
    transfers: Mapping[str, StoredTransfer],
    reversed_transfers: Mapping[str, StoredTransfer] | None = None,
) -> list[Change]:
    """The batch's balance and transfer changes, in feed order (`reversed_transfers`: the earlier
    transfers the batch reversed, at the position of their reversal's first event)."""
    changes = [
        encode(
            BALANCE,
            BalanceChange(
                account_id,
                _money(state.balance),
                _money(state.available),
                state.version,
                state.position,
            ),
        )
        for account_id, state in balances
    ]
    changes += [
        encode(
            TRANSFER,
            TransferChange(
                transfer_id,
                t.from_account,
                t.to_account,
                _money(t.amount),
                t.currency,
                t.status,
                t.position,
                t.reversal_of,
                t.reversed_by,
            ),
        )
        for transfer_id, t in chain(transfers.items(), (reversed_transfers or {}).items())
    ]
    return sorted(changes, key=lambda change: change.id)


async def feed_tip(reader: Redis, keys: GenerationKeys) -> ChangeId | None:
    raw = await reader.hget(keys.meta, META_FEED_TIP)
    return ChangeId.parse(str(raw)) if raw is not None else None


def stage_changes(
    tx: Pipeline, keys: GenerationKeys, changes: Iterable[Change], tip: ChangeId | None
) -> None:
    """Queue the XADDs of the changes after `tip` (the feed's newest before this batch)."""
    fresh = [change for change in changes if tip is None or change.id > tip]
    if fresh:
        tx.hset(keys.meta, META_FEED_TIP, str(fresh[-1].id))
    for change in fresh:
        tx.xadd(
            keys.changes,
            change.fields(),  # type: ignore[arg-type]  # redis-py types fields too narrowly
            id=str(change.id),
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )


def stage_progress(
    tx: Pipeline,
    keys: GenerationKeys,
    name: str,
    span: tuple[int, int],
    head: int,
    tip: ChangeId | None,
) -> None:
    """The batch's `projection` change, and where this generation's feed starts (first batch)."""
    before, checkpoint = span
    tx.hsetnx(keys.meta, META_FEED_FROM, before)
    lag = max(head, checkpoint) - checkpoint
    stage_changes(tx, keys, [encode(PROJECTION, ProjectionChange(name, checkpoint, lag))], tip)
