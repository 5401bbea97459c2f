"""Running holds: placing one on two accounts, and resolving it (capture, void, expiry) once.

A hold id lives in the transfer-id namespace (its capture posts a transfer with id = hold id): it
is claimed in the transfers table in the transaction of the HoldPlaced events, with the request's
fingerprint and the first answer, so a retry with the same id and body is answered from it, and
the same id with another body (or a transfer's id) is refused (`hold_exists`).

Capture, void and the system's expiry (`expire`, called by the worker's expiry loop,
projectors/hold_expiry.py) each resolve the hold exactly once (write_side/hold_resolution.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kernel.money import format_money
from write_side.command_bus import CommandBus, fingerprint
from write_side.commands import CaptureHold, PlaceHold, VoidHold
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    HoldIdTaken,
    HoldNotFound,
    HoldNotPending,
)
from write_side.domain.hold import (
    PENDING,
    Resolution,
    decide_capture,
    decide_expiry,
    decide_hold,
    decide_void,
)
from write_side.hold_resolution import (
    EXPIRE,
    Clock,
    HoldResolver,
    NotDue,
    side,
    utc_now,
)
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
from write_side.store.records import ANONYMOUS_CLIENT, CommandRecord, TransferRecord


def timestamp(moment: datetime) -> str:
    """The wire form of a time, as the query API writes it too: ISO 8601 in UTC, e.g.
    "2026-11-30T08:00:00.250000+00:00"."""
    return moment.astimezone(UTC).isoformat()


def replay_hold(earlier: TransferRecord, claim: str) -> MultiOutcome:
    """The first answer of a hold id, when `claim` (this request's fingerprint) matches it."""
    if earlier.fingerprint != claim:
        used_by = "a hold with another body" if "hold_id" in earlier.result else "a transfer"
        raise HoldIdTaken(
            f"id {earlier.transfer_id!r} is already used by {used_by}; choose a new hold_id"
        )
    return MultiOutcome(earlier.last_position, earlier.result, replayed=True)


class HoldRunner:
    def __init__(
        self,
        bus: CommandBus,
        repository: LedgerAccounts,
        publisher: EventPublisher,
        clock: Clock = utc_now,
    ) -> None:
        self._bus = bus
        self._repository = repository
        self._publisher = publisher
        self._clock = clock
        self._resolver = HoldResolver(bus, repository, publisher, clock)

    # --- placing --------------------------------------------------------------------------------

    async def place(
        self, command: PlaceHold, key: str | None = None, *, client: str = ANONYMOUS_CLIENT
    ) -> MultiOutcome:
        return await once_per_key(
            self._bus,
            self._repository,
            key,
            client,
            fingerprint(command),
            lambda record: self._place_new(command, record),
        )

    async def _place_new(self, command: PlaceHold, record: CommandRecord | None) -> MultiOutcome:
        if command.hold_id is None:
            command = dataclasses.replace(command, hold_id=uuid.uuid4().hex)
        hold_id = command.hold_id
        assert hold_id is not None
        claim = fingerprint(command)
        expires_at = self._clock() + timedelta(seconds=command.expires_in_s)
        outcome = await once_per_claim(
            self._repository,
            self._bus.deadline_s,
            hold_id,
            lambda earlier: replay_hold(earlier, claim),
            lambda fresh: self._attempt_place(command, expires_at, claim, record, fresh),
        )
        if not outcome.replayed:
            await self._publisher.events_committed(command.from_account, outcome.position)
        return outcome

    async def _attempt_place(
        self,
        command: PlaceHold,
        expires_at: datetime,
        claim: str,
        record: CommandRecord | None,
        fresh: bool,
    ) -> MultiOutcome:
        hold_id = command.hold_id
        assert hold_id is not None

        async def decide(workspace: Workspace) -> dict[str, Any]:
            source = await workspace.account(command.from_account)
            target = await workspace.account(command.to_account)
            events = decide_hold(
                source, target, hold_id, command.amount, expires_at, command.reference
            )
            workspace.record(source.account_id, events.sent)
            workspace.record(target.account_id, events.received)
            return {
                "hold_id": hold_id,
                "status": PENDING,
                "amount": format_money(command.amount),
                "expires_at": timestamp(expires_at),
                "from": side(source),
                "to": side(target),
            }

        workspace, result = await decide_confirmed(self._repository, fresh, decide)
        claimed = TransferRecord(hold_id, claim, result)
        appended = await workspace.save(
            "PlaceHold", keyed(record, command.from_account, result), [claimed]
        )
        return MultiOutcome(appended.last_position, result)

    # --- resolving ------------------------------------------------------------------------------

    async def capture(
        self, command: CaptureHold, key: str | None = None, *, client: str = ANONYMOUS_CLIENT
    ) -> MultiOutcome:
        def decide(source: BankAccount, target: BankAccount, now: datetime) -> Resolution:
            return decide_capture(source, target, command.hold_id, command.amount, now)

        return await once_per_key(
            self._bus,
            self._repository,
            key,
            client,
            fingerprint(command),
            lambda record: self._resolver.resolve(command.hold_id, "CaptureHold", decide, record),
        )

    async def void(
        self, command: VoidHold, key: str | None = None, *, client: str = ANONYMOUS_CLIENT
    ) -> MultiOutcome:
        def decide(source: BankAccount, target: BankAccount, now: datetime) -> Resolution:
            return decide_void(source, target, command.hold_id, now)

        return await once_per_key(
            self._bus,
            self._repository,
            key,
            client,
            fingerprint(command),
            lambda record: self._resolver.resolve(command.hold_id, "VoidHold", decide, record),
        )

    async def expire(self, hold_id: str) -> bool:
        """The system's expiry of a due hold: True when this call appended it; False when the hold
        is not due yet, or no longer pending (resolved meanwhile, by anyone)."""

        def decide(source: BankAccount, target: BankAccount, now: datetime) -> Resolution | None:
            return decide_expiry(source, target, hold_id, now)

        try:
            await self._resolver.resolve(hold_id, EXPIRE, decide, None)
        except (HoldNotPending, HoldNotFound, NotDue):
            return False
        return True
