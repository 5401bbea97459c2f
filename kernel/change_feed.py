"""The change feed's contract between the projector that writes it and the query API's `/stream`.

The balances projection appends its changes to a Redis Stream of its generation
(`GenerationKeys.changes`) inside the batch's MULTI/EXEC, so a change is visible exactly when the
batch is. Each entry's id is `<store position>-<kind>`: positions only grow from batch to batch,
and at one position there is at most one change of each kind, written in kind order (a balance,
then the transfer its event completed, then the batch's progress). The ids are therefore the same
in every generation that replayed the same events, and a client's `Last-Event-ID` means the same
thing after a rebuild. The stream is capped (`MAXLEN ~`), so a client that was away too long is
told to reload (`reset`) instead of silently missing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

from kernel.read_model_layout import BALANCES

FEED_PROJECTION: Final = BALANCES
"""The projection whose batches write the feed (it knows balances and transfers)."""
STREAM_MAXLEN: Final = 10_000
"""About this many changes are kept for resuming clients (approximate trimming)."""
META_FEED_TIP: Final = "feed_tip"
"""Generation meta field: the id of the newest change in the feed. A batch replayed after a lost
checkpoint adds only changes after it (XADD refuses an id at or below the stream's newest)."""
META_FEED_FROM: Final = "feed_from"
"""Generation meta field: the checkpoint before the first batch that wrote the feed; changes after
it are in the stream unless trimmed."""

BALANCE: Final = "balance"
TRANSFER: Final = "transfer"
PROJECTION: Final = "projection"
RESET: Final = "reset"
KIND_ORDER: Final = {BALANCE: 0, TRANSFER: 1, PROJECTION: 2}


class BalanceChange(msgspec.Struct, frozen=True):
    account_id: str
    balance: str
    available: str
    version: int
    position: int


class TransferChange(msgspec.Struct, frozen=True, omit_defaults=True):
    transfer_id: str
    from_account: str
    to_account: str
    amount: str
    currency: str
    status: str
    """"posted", or "reversed": then `position` is the reversal's first event."""
    position: int
    reversal_of: str | None = None
    """On a reversal: the transfer it moves back (absent otherwise)."""
    reversed_by: str | None = None
    """On a reversed transfer: its reversal (absent otherwise)."""


class ProjectionChange(msgspec.Struct, frozen=True):
    name: str
    checkpoint: int
    lag: int


class Reset(msgspec.Struct, frozen=True):
    reason: str


@dataclass(frozen=True, slots=True, order=True)
class ChangeId:
    """Where a change sits in the feed: its store position, then its kind's rank."""

    position: int
    rank: int

    @classmethod
    def of(cls, position: int, kind: str) -> ChangeId:
        return cls(position, KIND_ORDER[kind])

    @classmethod
    def parse(cls, raw: str) -> ChangeId | None:
        """`12-1` (an entry id) or `12` (a position: after every change at it); None if neither."""
        head, dash, tail = raw.strip().partition("-")
        if not head.isdigit() or (dash and not tail.isdigit()) or len(raw) > 40:
            return None
        return cls(int(head), int(tail) if dash else max(KIND_ORDER.values()))

    def __str__(self) -> str:
        return f"{self.position}-{self.rank}"


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the feed as stored and as sent: `data` is the JSON of the change."""

    id: ChangeId
    kind: str
    data: bytes

    def fields(self) -> dict[str, bytes | str]:
        return {"kind": self.kind, "data": self.data}


def encode(kind: str, change: BalanceChange | TransferChange | ProjectionChange) -> Change:
    return Change(ChangeId.of(change_position(change), kind), kind, msgspec.json.encode(change))


def change_position(change: BalanceChange | TransferChange | ProjectionChange) -> int:
    return change.checkpoint if isinstance(change, ProjectionChange) else change.position
