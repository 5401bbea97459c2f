"""Atomic batches: up to 100 commands applied together in one store transaction, or none at all.

The commands are decided one after another on accounts held in memory (a `Workspace`), so a later
command sees what the earlier ones did (open an account, deposit into it, transfer from it), and
everything they decided goes to the store in ONE append. When a command is refused the whole batch
is: `BatchFailed` names it, and nothing is appended.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from kernel.money import format_money
from write_side import transfers
from write_side.command_bus import CommandBus, fingerprint
from write_side.commands import Batch, BatchCommand, Deposit, OpenAccount, Transfer, Withdraw
from write_side.domain.errors import BatchFailed, LedgerError, TransferIdTaken, VersionConflict
from write_side.handlers import HANDLERS
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


def with_generated_ids(batch: Batch) -> Batch:
    """The batch with an id for every account to open and every transfer that came without one."""
    commands: list[BatchCommand] = []
    for command in batch.commands:
        if isinstance(command, OpenAccount) and command.account_id is None:
            command = dataclasses.replace(command, account_id=uuid.uuid4().hex)
        elif isinstance(command, Transfer) and command.transfer_id is None:
            command = dataclasses.replace(command, transfer_id=uuid.uuid4().hex)
        commands.append(command)
    return Batch(tuple(commands))


async def _decide_one(
    workspace: Workspace, command: BatchCommand, claims: list[TransferRecord]
) -> dict[str, Any]:
    """One command's decision and its usual answer without `position`."""
    if isinstance(command, Transfer):
        if any(claim.transfer_id == command.transfer_id for claim in claims):
            raise TransferIdTaken(f"transfer {command.transfer_id!r} appears twice in the batch")
        result = await transfers.decide(workspace, command)
        assert command.transfer_id is not None
        claims.append(TransferRecord(command.transfer_id, fingerprint(command), result))
        return result
    assert command.account_id is not None
    account = await workspace.account(command.account_id)
    if command.expected_version is not None and command.expected_version != account.version:
        raise VersionConflict(command.expected_version, account.version)
    workspace.record(account.account_id, HANDLERS[type(command)](account, command))
    answer: dict[str, Any] = {"account_id": account.account_id, "version": account.version}
    if isinstance(command, Deposit | Withdraw):
        answer["balance"] = format_money(account.balance)
    return answer


async def decide_all(
    workspace: Workspace, batch: Batch, claims: list[TransferRecord]
) -> list[dict[str, Any]]:
    results = []
    for index, command in enumerate(batch.commands):
        try:
            results.append(await _decide_one(workspace, command, claims))
        except LedgerError as refused:
            raise BatchFailed(index, refused, len(batch.commands)) from None
    return results


class BatchRunner:
    def __init__(self, bus: CommandBus, repository: LedgerAccounts, publisher: EventPublisher):
        self._bus = bus
        self._repository = repository
        self._publisher = publisher

    async def execute(
        self, batch: Batch, idempotency_key: str | None = None, *, client: str = ANONYMOUS_CLIENT
    ) -> MultiOutcome:
        """The batch's answer: `result["results"]`, each command's answer without `position`."""
        return await once_per_key(
            self._bus,
            self._repository,
            idempotency_key,
            client,
            fingerprint(batch),
            lambda record: self._execute_new(with_generated_ids(batch), record),
        )

    async def _execute_new(self, batch: Batch, record: CommandRecord | None) -> MultiOutcome:
        try:
            outcome = await with_retries(
                self._bus.deadline_s, lambda fresh: self._attempt(batch, record, fresh)
            )
        except TransferExists as taken:
            index = next(
                i
                for i, command in enumerate(batch.commands)
                if isinstance(command, Transfer) and command.transfer_id == taken.record.transfer_id
            )
            refused = TransferIdTaken(f"transfer {taken.record.transfer_id!r} already exists")
            raise BatchFailed(index, refused, len(batch.commands)) from None
        await self._publisher.events_committed(_first_stream(batch), outcome.position)
        return outcome

    async def _attempt(
        self, batch: Batch, record: CommandRecord | None, fresh: bool
    ) -> MultiOutcome:
        claims: list[TransferRecord] = []

        async def decide(workspace: Workspace) -> list[dict[str, Any]]:
            claims.clear()
            return await decide_all(workspace, batch, claims)

        workspace, results = await decide_confirmed(self._repository, fresh, decide)
        result = {"results": results}
        first_stream = workspace.events[0][0]
        appended = await workspace.save("Batch", keyed(record, first_stream, result), claims)
        return MultiOutcome(appended.last_position, result)


def _first_stream(batch: Batch) -> str:
    first = batch.commands[0]
    stream = first.from_account if isinstance(first, Transfer) else first.account_id
    assert stream is not None
    return stream
