"""Running a reversal: the original's facts from the store, then a transfer back, claimed once.

The original is read from the write side's own truth: its transfer-id claim (for a captured hold,
its resolution's claim) names the sender and the version of its `TransferSent`, whose payload holds the amount, the receiver and whether it is a
reversal itself. The reversal is then decided and appended like a transfer, with its derived id
(`domain/reversal.py: reversal_id`) claimed in the same transaction: a retry of the same request
(same reference) is answered from that claim, another request finds it taken (`already_reversed`),
and of racing requests exactly one appends.
"""

from __future__ import annotations

from typing import Any

from kernel.events import TransferSent
from write_side.command_bus import CommandBus, fingerprint
from write_side.commands import ReverseTransfer
from write_side.domain.errors import (
    AlreadyReversed,
    NotReversible,
    TransferNotFound,
)
from write_side.domain.hold import CAPTURED, resolution_id
from write_side.domain.reversal import RecordedTransfer, decide_reversal, reversal_id
from write_side.multi_account import (
    LedgerAccounts,
    MultiOutcome,
    Workspace,
    decide_confirmed,
    keyed,
    once_per_claim,
    once_per_key,
)
from write_side.publisher import EventPublisher
from write_side.store.event_store import EventStore
from write_side.store.records import ANONYMOUS_CLIENT, CommandRecord, TransferRecord
from write_side.transfers import side

CAPTURE_EVENTS_ON_SENDER = 2
"""A capture appends `TransferSent` then `HoldCaptured` on the sending account."""


async def _claim_of_posted_transfer(
    store: EventStore, transfer_id: str
) -> tuple[TransferRecord, int]:
    """The claim whose answer names the sender's version after `transfer_id` was sent, and how
    many of the sender's events that append wrote (the `TransferSent` is among them).

    A transfer's own claim names it; a hold's claim names the hold, whose transfer exists only
    once it was captured: then its resolution's claim names the capture."""
    claim = await store.find_transfer(transfer_id)
    if claim is None or claim.result.get("hold_id", transfer_id) != transfer_id:
        # (A hold's resolution claim names its hold: it is no transfer of its own.)
        raise TransferNotFound(f"transfer {transfer_id!r} does not exist")
    if "hold_id" not in claim.result:
        return claim, 1
    resolution = await store.find_transfer(resolution_id(transfer_id))
    if resolution is None or resolution.result.get("status") != CAPTURED:
        raise TransferNotFound(
            f"hold {transfer_id!r} was not captured: no transfer {transfer_id!r} exists"
        )
    return resolution, CAPTURE_EVENTS_ON_SENDER


async def recorded_transfer(store: EventStore, transfer_id: str) -> RecordedTransfer:
    """The transfer `transfer_id` (posted directly or by capturing a hold) as its own events
    recorded it."""
    claim, written = await _claim_of_posted_transfer(store, transfer_id)
    sender = claim.result.get("from")
    sent = None
    if isinstance(sender, dict):
        version = int(sender["version"])
        events = await store.read_stream(str(sender["account_id"]), version - written, written)
        sent = next(
            (
                event
                for event in (e.to_domain() for e in events)
                if isinstance(event, TransferSent) and event.transfer_id == transfer_id
            ),
            None,
        )
    if sent is None:
        raise NotReversible(f"transfer {transfer_id!r} cannot be reversed")
    assert isinstance(sender, dict)
    return RecordedTransfer(
        transfer_id, str(sender["account_id"]), sent.counterparty, sent.amount, sent.reversal_of
    )


def replay_reversal(earlier: TransferRecord, claim: str) -> MultiOutcome:
    """The first answer of this reversal, when `claim` (this request's fingerprint) matches it."""
    if earlier.fingerprint != claim:
        original = earlier.result.get("reversal_of")
        raise AlreadyReversed(
            f"transfer {original!r} was already reversed by {earlier.transfer_id!r}"
        )
    return MultiOutcome(earlier.last_position, earlier.result, replayed=True)


async def decide(
    workspace: Workspace, original: RecordedTransfer, reference: str | None
) -> dict[str, Any]:
    """Decide the reversal on the workspace; its answer without `position`."""
    receiver = await workspace.account(original.to_account)
    sender = await workspace.account(original.from_account)
    events = decide_reversal(original, receiver, sender, reference)
    workspace.record(receiver.account_id, events.sent)
    workspace.record(sender.account_id, events.received)
    return {
        "transfer_id": reversal_id(original.transfer_id),
        "status": "posted",
        "reversal_of": original.transfer_id,
        "from": side(receiver),
        "to": side(sender),
    }


class ReversalRunner:
    def __init__(
        self,
        bus: CommandBus,
        repository: LedgerAccounts,
        store: EventStore,
        publisher: EventPublisher,
    ):
        self._bus = bus
        self._repository = repository
        self._store = store
        self._publisher = publisher

    async def execute(
        self,
        command: ReverseTransfer,
        idempotency_key: str | None = None,
        *,
        client: str = ANONYMOUS_CLIENT,
    ) -> MultiOutcome:
        return await once_per_key(
            self._bus,
            self._repository,
            idempotency_key,
            client,
            fingerprint(command),
            lambda record: self._execute_new(command, record),
        )

    async def _execute_new(
        self, command: ReverseTransfer, record: CommandRecord | None
    ) -> MultiOutcome:
        claim = fingerprint(command)
        original = await recorded_transfer(self._store, command.transfer_id)
        outcome = await once_per_claim(
            self._repository,
            self._bus.deadline_s,
            reversal_id(command.transfer_id),
            lambda earlier: replay_reversal(earlier, claim),
            lambda fresh: self._attempt(original, command, claim, record, fresh),
        )
        if not outcome.replayed:
            await self._publisher.events_committed(original.to_account, outcome.position)
        return outcome

    async def _attempt(
        self,
        original: RecordedTransfer,
        command: ReverseTransfer,
        claim: str,
        record: CommandRecord | None,
        fresh: bool,
    ) -> MultiOutcome:
        workspace, result = await decide_confirmed(
            self._repository,
            fresh,
            lambda workspace: decide(workspace, original, command.reference),
        )
        claimed = TransferRecord(result["transfer_id"], claim, result)
        appended = await workspace.save(
            "ReverseTransfer", keyed(record, original.to_account, result), [claimed]
        )
        return MultiOutcome(appended.last_position, result)
