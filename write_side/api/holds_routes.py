"""Routes of holds (two-phase transfers): place, capture, void."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from kernel.identifiers import ACCOUNT_ID
from write_side.api.json_body import StrictJSON
from write_side.api.routes import IdempotencyKey, OptionalBody, checked_key, command
from write_side.api.schemas import CaptureRequest, HoldRequest, HoldResolvedResponse, HoldResponse
from write_side.commands import CaptureHold, PlaceHold, VoidHold
from write_side.domain.errors import HoldNotFound
from write_side.holds import HoldRunner
from write_side.multi_account import MultiOutcome

HoldIdPath = Annotated[str, PathParameter(description="The hold id.")]


def _runner(state: State) -> HoldRunner:
    runner: HoldRunner = state.holds
    return runner


def _hold_id(raw: str) -> str:
    if not ACCOUNT_ID.matches(raw):
        raise HoldNotFound(f"hold {raw[:64]!r} does not exist")
    return raw


def _answer(outcome: MultiOutcome) -> dict[str, Any]:
    return {**outcome.result, "position": outcome.position}


@command(
    "/holds",
    status_code=201,
    summary="Reserve money on an account for a later transfer (a hold)",
    description="The amount must be available (balance + overdraft limit - held); the balance "
    "does not move until a capture. A retry with the same hold_id and body answers the first "
    "response; the same hold_id with another body, or a transfer's id, is 409 hold_exists. "
    "Pending past expires_in_s (1 to 604800, default 3600), the hold expires.",
    dto=StrictJSON[HoldRequest],
)
async def place_hold(
    data: JSONBody[HoldRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> HoldResponse:
    hold = PlaceHold(
        data.from_account,
        data.to_account,
        data.amount,
        data.hold_id,
        data.expires_in_s,
        data.reference,
    )
    outcome = await _runner(state).place(hold, checked_key(idempotency_key), client=client)
    return msgspec.convert(_answer(outcome), HoldResponse)


@command(
    "/holds/{hold_id:str}/capture",
    status_code=200,
    summary="Capture a pending hold: move part or all of it as a transfer",
    description="Posts a transfer (transfer id = hold id) of `amount` (default: all of the hold) "
    "and releases the rest. More than is held is 422 amount_exceeds_hold; a hold that is no longer "
    "pending (or reached expires_at) is 409 hold_not_pending with its `status`.",
    dto=StrictJSON[CaptureRequest],
    operation_class=OptionalBody,
)
async def capture_hold(
    hold_id: HoldIdPath,
    state: State,
    client: NamedDependency[str],
    data: JSONBody[CaptureRequest | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> HoldResolvedResponse:
    amount = data.amount if data is not None else None
    capture = CaptureHold(_hold_id(hold_id), amount)
    outcome = await _runner(state).capture(capture, checked_key(idempotency_key), client=client)
    return msgspec.convert(_answer(outcome), HoldResolvedResponse)


@command(
    "/holds/{hold_id:str}/void",
    status_code=200,
    summary="Void a pending hold: release all of it",
    description="Nothing moves. A hold that is no longer pending (or reached expires_at) is 409 "
    "hold_not_pending with its `status`.",
)
async def void_hold(
    hold_id: HoldIdPath,
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> HoldResolvedResponse:
    void = VoidHold(_hold_id(hold_id))
    outcome = await _runner(state).void(void, checked_key(idempotency_key), client=client)
    return msgspec.convert(_answer(outcome), HoldResolvedResponse)
