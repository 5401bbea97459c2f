"""Running holds: placing one on two accounts, and resolving it (capture, void, expiry) once.

A hold id lives in the transfer-id namespace (its capture posts a transfer with id = hold id): it
is claimed in the transfers table in the transaction of the HoldPlaced events, with the request's
fingerprint and the first answer, so a retry with the same id and body is answered from it, and
the same id with another body (or a transfer's id) is refused (`hold_exists`).

A resolution appends on both accounts with their expected versions, so two resolutions of one hold
cannot both commit: the loser is retried on fresh state, where the hold is no longer pending. As a
second, independent guard it claims one more transfers row, `resolution_id(hold_id)`, holding the
resolution's status and answer; that row is also where a later request learns the hold's status
(409 `hold_not_pending`). A capture or void that arrives at or after `expires_at` appends the
expiry itself and is answered 409 with status "expired"; the worker's expiry loop
(projectors/hold_expiry.py) appends the others through `expire`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from kernel.money import format_money
from write_side.command_bus import CommandBus, fingerprint
from write_side.commands import CaptureHold, PlaceHold, VoidHold
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    HoldIdTaken,
    HoldNotFound,
    HoldNotPending,
    LedgerError,
    StoreFailure,
)
from write_side.domain.hold import (
    EXPIRED,
    PENDING,
    Resolution,
    decide_capture,
    decide_expiry,
    decide_hold,
    decide_void,
    resolution_id,
)
from write_side.multi_account import (
    LedgerAccounts,
    MultiOutcome,
    Workspace,
    decide_confirmed,
    keyed,
    once_per_key,
    with_retries,
)
from write_side.publisher import EventPublisher
from write_side.store.records import ANONYMOUS_CLIENT, CommandRecord, TransferExists, TransferRecord

Clock = Callable[[], datetime]
Decide = Callable[[BankAccount, BankAccount, datetime], Resolution | None]

SYSTEM_ACTOR = {"actor": "system"}
"""Metadata of the events the system appends on its own (expiries found by the worker)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """The wire form of a time: ISO 8601 in UTC, e.g. "2026-11-30T08:00:00.250000Z"."""
    text: str = msgspec.to_builtins(moment.astimezone(UTC))
    return text


def side(account: BankAccount) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "version": account.version,
        "balance": format_money(account.balance),
        "held": format_money(account.held),
        "available": format_money(account.available),
    }


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
        earlier = await self._repository.find_transfer(hold_id)
        if earlier is not None:
            return replay_hold(earlier, claim)
        expires_at = self._clock() + timedelta(seconds=command.expires_in_s)
        try:
            outcome = await with_retries(
                self._bus.deadline_s,
                lambda fresh: self._attempt_place(command, expires_at, claim, record, fresh),
            )
        except TransferExists as taken:  # a racing request with this id appended first
            return replay_hold(taken.record, claim)
        except StoreFailure:
            raise
        except LedgerError:
            earlier = await self._repository.find_transfer(hold_id)
            if earlier is None:
                raise
            return replay_hold(earlier, claim)
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
            lambda record: self._resolve(command.hold_id, "CaptureHold", decide, record),
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
            lambda record: self._resolve(command.hold_id, "VoidHold", decide, record),
        )

    async def expire(self, hold_id: str) -> bool:
        """The system's expiry of a due hold: True when this call appended it; False when the hold
        is not due yet, or no longer pending (resolved meanwhile, by anyone)."""

        def decide(source: BankAccount, target: BankAccount, now: datetime) -> Resolution | None:
            return decide_expiry(source, target, hold_id, now)

        try:
            await self._resolve(hold_id, "ExpireHold", decide, None)
        except (HoldNotPending, HoldNotFound, _NotDue):
            return False
        return True

    async def _resolve(
        self, hold_id: str, name: str, decide: Decide, record: CommandRecord | None
    ) -> MultiOutcome:
        placed = await self._placed(hold_id)
        try:
            outcome, status = await with_retries(
                self._bus.deadline_s,
                lambda fresh: self._attempt_resolve(placed, name, decide, record, fresh),
            )
        except TransferExists:  # another resolution claimed the hold first
            raise await self._not_pending(hold_id) from None
        except HoldNotFound:  # resolved by a racer: the fresh account no longer has it pending
            raise await self._not_pending(hold_id) from None
        await self._publisher.events_committed(
            placed.result["from"]["account_id"], outcome.position
        )
        if status == EXPIRED and name != "ExpireHold":
            raise HoldNotPending(hold_id, EXPIRED)  # due: this request appended the expiry
        return outcome

    async def _placed(self, hold_id: str) -> TransferRecord:
        """The hold's placement record; HoldNotPending once resolved, HoldNotFound if none."""
        resolved = await self._repository.find_transfer(resolution_id(hold_id))
        if resolved is not None:
            raise HoldNotPending(hold_id, resolved.result["status"])
        placed = await self._repository.find_transfer(hold_id)
        if placed is None or "hold_id" not in placed.result:
            raise HoldNotFound(f"hold {hold_id!r} does not exist")
        return placed

    async def _not_pending(self, hold_id: str) -> HoldNotPending:
        resolved = await self._repository.find_transfer(resolution_id(hold_id))
        return HoldNotPending(hold_id, resolved.result["status"] if resolved else "resolved")

    async def _attempt_resolve(
        self,
        placed: TransferRecord,
        name: str,
        decide: Decide,
        record: CommandRecord | None,
        fresh: bool,
    ) -> tuple[MultiOutcome, str]:
        hold_id = placed.result["hold_id"]
        from_id, to_id = placed.result["from"]["account_id"], placed.result["to"]["account_id"]

        async def decided(workspace: Workspace) -> tuple[dict[str, Any], str]:
            source = await workspace.account(from_id)
            target = await workspace.account(to_id)
            resolution = decide(source, target, self._clock())
            if resolution is None:
                raise _NotDue(hold_id)
            workspace.record(from_id, resolution.sent)
            workspace.record(to_id, resolution.received)
            answer = {
                "hold_id": hold_id,
                "status": resolution.status,
                "captured_amount": format_money(resolution.captured),
                "released_amount": format_money(resolution.released),
                "from": side(source),
                "to": side(target),
            }
            return answer, resolution.status

        workspace, (result, status) = await decide_confirmed(self._repository, fresh, decided)
        claimed = TransferRecord(resolution_id(hold_id), status, result)
        # An expiry decided for a capture or void answers 409: no idempotency record for it.
        keyed_record = keyed(record, from_id, result) if status != EXPIRED else None
        extra = SYSTEM_ACTOR if name == "ExpireHold" else None
        appended = await workspace.save(name, keyed_record, [claimed], extra)
        return MultiOutcome(appended.last_position, result), status


class _NotDue(LedgerError):
    """The system asked to expire a hold whose deadline has not come (its clock runs ahead)."""
