"""Running a transfer: both accounts decided together, both sides appended in one transaction.

The transfer id is the ledger-wide identity of a transfer: the store claims it in the transaction
of its events with the request's fingerprint and the first answer, so a retry with the same id and
body is answered from that record and appends nothing, and the same id with another body is
refused (`transfer_exists`).

Transfers of this process that share an account run one after another (measured under 32
connections over 1,000 accounts: racing, ~12% of them lost a version race and paid fresh loads, a
pause and a second append; waiting, none do).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from kernel.money import format_money
from write_side.command_bus import CommandBus, fingerprint
from write_side.commands import Transfer
from write_side.domain.account import BankAccount
from write_side.domain.errors import TransferIdTaken
from write_side.domain.transfer import decide_transfer
from write_side.multi_account import (
    AccountLocks,
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


def side(account: BankAccount) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "version": account.version,
        "balance": format_money(account.balance),
    }


async def decide(workspace: Workspace, command: Transfer) -> dict[str, Any]:
    """Decide `command` (its id already set) on the workspace; its answer without `position`."""
    assert command.transfer_id is not None
    source = await workspace.account(command.from_account)
    target = await workspace.account(command.to_account)
    events = decide_transfer(source, target, command.transfer_id, command.amount, command.reference)
    workspace.record(source.account_id, events.sent)
    workspace.record(target.account_id, events.received)
    return {
        "transfer_id": command.transfer_id,
        "status": "posted",
        "from": side(source),
        "to": side(target),
    }


def replay_transfer(earlier: TransferRecord, claim: str) -> MultiOutcome:
    """The first answer of a transfer id, when `claim` (this request's fingerprint) matches it."""
    if earlier.fingerprint != claim:
        raise TransferIdTaken(
            f"transfer {earlier.transfer_id!r} already exists with another body; choose a new "
            "transfer_id"
        )
    return MultiOutcome(earlier.last_position, earlier.result, replayed=True)


class TransferRunner:
    def __init__(self, bus: CommandBus, repository: LedgerAccounts, publisher: EventPublisher):
        self._bus = bus
        self._repository = repository
        self._publisher = publisher
        self._locks = AccountLocks()

    async def execute(
        self,
        command: Transfer,
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

    async def _execute_new(self, command: Transfer, record: CommandRecord | None) -> MultiOutcome:
        generated = command.transfer_id is None
        if generated:
            command = dataclasses.replace(command, transfer_id=uuid.uuid4().hex)
        assert command.transfer_id is not None
        claim = fingerprint(command)
        accounts = (command.from_account, command.to_account)
        async with self._locks.holding(accounts, self._bus.deadline_s):
            outcome = await once_per_claim(
                self._repository,
                self._bus.deadline_s,
                command.transfer_id,
                lambda earlier: replay_transfer(earlier, claim),
                lambda fresh: self._attempt(command, claim, record, fresh),
                generated=generated,
            )
        if not outcome.replayed:
            await self._publisher.events_committed(command.from_account, outcome.position)
        return outcome

    async def _attempt(
        self, command: Transfer, claim: str, record: CommandRecord | None, fresh: bool
    ) -> MultiOutcome:
        workspace, result = await decide_confirmed(
            self._repository, fresh, lambda workspace: decide(workspace, command)
        )
        assert command.transfer_id is not None
        claimed = TransferRecord(command.transfer_id, claim, result)
        appended = await workspace.save(
            "Transfer", keyed(record, command.from_account, result), [claimed]
        )
        return MultiOutcome(appended.last_position, result)
