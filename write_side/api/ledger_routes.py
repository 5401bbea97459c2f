"""Routes of the commands that span accounts: transfers and atomic batches."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from kernel.identifiers import RECORDED_TRANSFER_ID
from write_side.api.json_body import StrictJSON
from write_side.api.routes import IdempotencyKey, OptionalBody, checked_key, command
from write_side.api.schemas import (
    BatchItem,
    BatchRequest,
    BatchResponse,
    DepositItem,
    OpenAccountItem,
    ReversalResponse,
    ReverseTransferRequest,
    TransferItem,
    TransferRequest,
    TransferResponse,
)
from write_side.batches import BatchRunner
from write_side.commands import (
    Batch,
    BatchCommand,
    Deposit,
    OpenAccount,
    ReverseTransfer,
    Transfer,
    Withdraw,
)
from write_side.domain.errors import BatchFailed, InvalidCommand, TransferNotFound
from write_side.reversals import ReversalRunner
from write_side.transfers import TransferRunner

TransferIdPath = Annotated[str, PathParameter(description="The transfer id.")]
MAX_BATCH_BODY_BYTES = 64 * 1024
"""100 commands with references do not fit in the 16 KiB of a single command's body."""


def _transfer(data: TransferRequest) -> Transfer:
    return Transfer(
        data.from_account, data.to_account, data.amount, data.transfer_id, data.reference
    )


def _batch_command(item: BatchItem) -> BatchCommand:
    if isinstance(item, OpenAccountItem):
        return OpenAccount(item.owner, item.currency, item.account_id, item.expected_version)
    if isinstance(item, TransferItem):
        return _transfer(item)
    kind = Deposit if isinstance(item, DepositItem) else Withdraw
    return kind(item.account_id, item.amount, item.expected_version, item.reference)


def _batch(data: BatchRequest) -> Batch:
    """The batch's commands; one whose data a rule refuses fails the batch at its index."""
    commands = []
    for index, item in enumerate(data.commands):
        try:
            commands.append(_batch_command(item))
        except InvalidCommand as refused:
            raise BatchFailed(index, refused, len(data.commands)) from None
    return Batch(tuple(commands))


def _with_position(result: dict[str, Any], position: int) -> dict[str, Any]:
    return {**result, "position": position}


@command(
    "/transfers",
    status_code=201,
    summary="Transfer money between two accounts",
    description="Both sides are recorded in one transaction. A retry with the same transfer_id and "
    "body answers the first response and appends nothing; the same transfer_id with another body "
    "is 409 transfer_exists.",
    dto=StrictJSON[TransferRequest],
)
async def transfer(
    data: JSONBody[TransferRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> TransferResponse:
    runner: TransferRunner = state.transfers
    outcome = await runner.execute(_transfer(data), checked_key(idempotency_key), client=client)
    return msgspec.convert(_with_position(outcome.result, outcome.position), TransferResponse)


@command(
    "/transfers/{transfer_id:str}/reverse",
    status_code=201,
    summary="Reverse a transfer",
    description="Records a new transfer moving the same amount back, from the original's "
    "receiver to its sender, naming it in `reversal_of` (its id: `<transfer_id>.reversal`, or "
    "`<digest>.long.reversal` for ids over 55 characters); "
    "the original keeps its events and shows `status: reversed` with `reversed_by` on the "
    "query API. A transfer is reversed at most once: a retry with the same body gets the first "
    "answer (201) and appends nothing, another body is 409 already_reversed. A reversal is not "
    "reversible (409 not_reversible); the receiver must still have the money (409 "
    "insufficient_funds) and both accounts must be open (409 account_closed).",
    dto=StrictJSON[ReverseTransferRequest],
    operation_class=OptionalBody,
)
async def reverse_transfer(
    transfer_id: TransferIdPath,
    state: State,
    client: NamedDependency[str],
    data: JSONBody[ReverseTransferRequest | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> ReversalResponse:
    if not RECORDED_TRANSFER_ID.matches(transfer_id):
        raise TransferNotFound(f"transfer {transfer_id[:64]!r} does not exist")
    command = ReverseTransfer(transfer_id, data.reference if data is not None else None)
    runner: ReversalRunner = state.reversals
    outcome = await runner.execute(command, checked_key(idempotency_key), client=client)
    return msgspec.convert(_with_position(outcome.result, outcome.position), ReversalResponse)


@command(
    "/batches",
    status_code=200,
    summary="Apply up to 100 commands atomically",
    description="open_account, deposit, withdraw and transfer commands, decided in order (each "
    "sees the effects of the earlier ones) and recorded in one transaction, or not at all: a "
    "refused command makes it 409 batch_failed with failed_index and each command's code.",
    dto=StrictJSON[BatchRequest],
    request_max_body_size=MAX_BATCH_BODY_BYTES,
)
async def batch(
    data: JSONBody[BatchRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> BatchResponse:
    runner: BatchRunner = state.batches
    outcome = await runner.execute(_batch(data), checked_key(idempotency_key), client=client)
    results = [_with_position(r, outcome.position) for r in outcome.result["results"]]
    return BatchResponse(outcome.position, results)
