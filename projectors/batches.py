"""Reading a projection's next batch from the store without splitting a store transaction.

The events of one multi-event append (a transfer's two sides, a command's several events) share
`metadata["tx"]`. A batch cut between two of them would let readers see one side of a transfer
(money in flight, a summary total that moved without a deposit) until the next batch, and would
put a checkpoint in the middle of a command. So a batch that ends inside a transaction is extended
until the transaction's last event, whatever the batch size.

Only a full batch can end inside a transaction: a transaction's events become visible together
(positions are visible in commit order), so a read that returned fewer events than asked for saw
every event of every transaction it touched.
"""

from __future__ import annotations

from kernel.events import RecordedEvent
from write_side.store.event_store import EventStore

TX = "tx"
"""The metadata field the store gives every event of a multi-event append (one uuid hex each)."""
PEEK = 64
"""Events read per look past a full batch; a transaction is usually a handful of events."""


def transaction_of(event: RecordedEvent) -> str | None:
    tx = event.metadata.get(TX)
    return tx if isinstance(tx, str) else None


async def read_batch(store: EventStore, after: int, size: int) -> list[RecordedEvent]:
    """The events after position `after`: `size` of them, or more to end on a transaction's last."""
    events = await store.read_after(after, size)
    if len(events) < size:
        return events
    tx = transaction_of(events[-1])
    while tx is not None:
        more = await store.read_after(events[-1].position, PEEK)
        inside = _prefix_length(more, tx)
        events += more[:inside]
        if inside < len(more) or len(more) < PEEK:
            break
    return events


def _prefix_length(events: list[RecordedEvent], tx: str) -> int:
    """How many of `events`, from the first, belong to `tx`."""
    for index, event in enumerate(events):
        if transaction_of(event) != tx:
            return index
    return len(events)
