"""Resolving a hold exactly once: a capture, a void, or its expiry (write_side/holds.py runs them).

A resolution appends on both accounts with their expected versions, so two resolutions of one hold
cannot both commit: the loser is retried on fresh state, where the hold is no longer pending. As a
second, independent guard it claims one more transfers row, `resolution_id(hold_id)`, holding the
resolution's status and answer; that row is also where a later request learns the hold's status
(409 `hold_not_pending`). A capture or void decided at or after `expires_at` becomes the expiry:
it is appended, and the request is answered 409 with status "expired".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kernel.money import format_money
from write_side.command_bus import CommandBus
from write_side.domain.account import BankAccount
from write_side.domain.errors import HoldNotFound, HoldNotPending, LedgerError
from write_side.domain.hold import EXPIRED, Resolution, resolution_id
from write_side.multi_account import (
    LedgerAccounts,
    MultiOutcome,
    Workspace,
    decide_confirmed,
    keyed,
    with_retries,
)
from write_side.publisher import EventPublisher
from write_side.store.records import CommandRecord, TransferExists, TransferRecord

Clock = Callable[[], datetime]
Decide = Callable[[BankAccount, BankAccount, datetime], Resolution | None]
"""(sending account, receiving account, now) -> the resolution, or None when it is not due."""

EXPIRE = "ExpireHold"
"""The command name of the system's expiries (event metadata `command`)."""
SYSTEM_ACTOR = {"actor": "system"}
"""Metadata of the events the system appends on its own (expiries found by the worker)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def side(account: BankAccount) -> dict[str, Any]:
    """One account's part of a hold answer."""
    return {
        "account_id": account.account_id,
        "version": account.version,
        "balance": format_money(account.balance),
        "held": format_money(account.held),
        "available": format_money(account.available),
    }


class NotDue(LedgerError):
    """The system asked to expire a hold whose deadline has not come (its clock runs ahead)."""


class HoldResolver:
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

    async def resolve(
        self, hold_id: str, name: str, decide: Decide, record: CommandRecord | None
    ) -> MultiOutcome:
        placed = await self._placed(hold_id)
        try:
            outcome, status = await with_retries(
                self._bus.deadline_s,
                lambda fresh: self._attempt(placed, name, decide, record, fresh),
            )
        except TransferExists:  # another resolution claimed the hold first
            raise await self._not_pending(hold_id) from None
        except HoldNotFound:  # resolved by a racer: the fresh account no longer has it pending
            raise await self._not_pending(hold_id) from None
        await self._publisher.events_committed(
            placed.result["from"]["account_id"], outcome.position
        )
        if status == EXPIRED and name != EXPIRE:
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

    async def _attempt(
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
                raise NotDue(hold_id)
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
        extra = SYSTEM_ACTOR if name == EXPIRE else None
        appended = await workspace.save(name, keyed_record, [claimed], extra)
        return MultiOutcome(appended.last_position, result), status
