"""Thin route handlers: parse the request, build a command, hand it to the bus, shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from auth.guards import Principal, requires
from kernel.errors import ErrorBody
from kernel.identifiers import ACCOUNT_ID, IDEMPOTENCY_KEY
from kernel.money import format_money
from write_side.api.json_body import StrictJSON
from write_side.api.schemas import (
    AmountRequest,
    CloseAccountRequest,
    CommandResponse,
    EventResponse,
    EventsResponse,
    OpenAccountRequest,
    OpenedResponse,
    OverdraftLimitRequest,
    OverdraftLimitResponse,
)
from write_side.command_bus import CommandBus, CommandOutcome
from write_side.commands import CloseAccount, Deposit, OpenAccount, SetOverdraftLimit, Withdraw
from write_side.domain.errors import AccountNotFound, InvalidCommand
from write_side.personal_data import PersonalData
from write_side.store.event_store import EventStore

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Retries with the same key and body from the same API key return the first "
        "response and append nothing, for IDEMPOTENCY_RETENTION (24 h by default). Keys belong to "
        "the API key that sent them: another API key's same key is another command.",
    ),
]
AccountIdPath = Annotated[str, PathParameter(description="The account id.")]


def _account_id(raw: str) -> str:
    if not ACCOUNT_ID.matches(raw):
        raise AccountNotFound(f"account {raw[:64]!r} does not exist")
    return raw


def checked_key(raw: str | None) -> str | None:
    if raw is not None and not IDEMPOTENCY_KEY.matches(raw):
        raise InvalidCommand(f"Idempotency-Key must be {IDEMPOTENCY_KEY.description}")
    return raw


def _client(request: Request[Any, Any, Any]) -> str:
    """Whose Idempotency-Keys these are: the stable id of the caller's API key (`anonymous` with
    auth off). The write API's resolver always knows it; a principal without one is a wiring bug."""
    principal = request.scope.get("user")
    if not isinstance(principal, Principal) or principal.key_id is None:
        raise RuntimeError("the caller's API key has no id to scope its idempotency keys")
    return principal.key_id


def _answer(outcome: CommandOutcome) -> CommandResponse:
    return CommandResponse(
        outcome.account_id, outcome.version, outcome.position, format_money(outcome.balance)
    )


def _bus(state: State) -> CommandBus:
    bus: CommandBus = state.bus
    return bus


WRITE = [requires("write")]

ERRORS = {
    400: "validation_error: the body, a header or a query parameter is malformed or mistyped.",
    401: "unauthorized: no valid bearer token.",
    403: "forbidden: the API key lacks the scope.",
    404: "account_not_found, hold_not_found, transfer_not_found (reversing an unknown "
    "transfer), or not_found for an unknown route.",
    409: "account_exists, insufficient_funds, account_closed, balance_not_zero, pending_holds, "
    "limit_below_balance, currency_mismatch, transfer_exists, already_reversed, not_reversible, "
    "hold_exists, hold_not_pending (with the hold's status), batch_failed (with failed_index and "
    "results), version_conflict (with current_version) or idempotency_key_in_flight.",
    413: "request_too_large: the body is over 16 KiB.",
    415: "unsupported_media_type: the body is not sent as application/json.",
    422: "validation_error (a rule refused the data, e.g. the amount), same_account, "
    "amount_exceeds_hold or idempotency_key_reused.",
    503: "store_unavailable (nothing was recorded), outcome_unknown (the connection was lost after "
    "the command was sent: retry with the same Idempotency-Key), command_timed_out or "
    "auth_unavailable, with Retry-After.",
}


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers a route can give, each `{"error": <code>, "detail": <sentence>}`."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=ERRORS[status],
            generate_examples=False,
        )
        for status in statuses
    }


COMMAND_ERRORS = _errors(400, 401, 403, 404, 409, 413, 415, 422, 503)


@dataclass
class OptionalBody(Operation):
    """The OpenAPI operation of a command whose body may be left out (Litestar marks every
    declared body required, even one defaulting to None)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


command = partial(
    post,
    return_dto=None,
    guards=WRITE,
    responses=COMMAND_ERRORS,
    dependencies={"client": Provide(_client, sync_to_thread=False)},
)
"""`@post` for a command: the write scope, its error answers, the caller's `client` id; the route
adds `dto=StrictJSON[Body]`."""


@command(
    "/accounts", status_code=201, summary="Open an account", dto=StrictJSON[OpenAccountRequest]
)
async def open_account(
    data: JSONBody[OpenAccountRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> OpenedResponse:
    command = OpenAccount(data.owner, data.currency, data.account_id, data.expected_version)
    outcome = await _bus(state).execute(command, checked_key(idempotency_key), client=client)
    return OpenedResponse(outcome.account_id, outcome.version, outcome.position)


@command(
    "/accounts/{account_id:str}/deposit",
    status_code=200,
    summary="Deposit money",
    dto=StrictJSON[AmountRequest],
)
async def deposit(
    account_id: AccountIdPath,
    data: JSONBody[AmountRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> CommandResponse:
    command = Deposit(_account_id(account_id), data.amount, data.expected_version, data.reference)
    return _answer(await _bus(state).execute(command, checked_key(idempotency_key), client=client))


@command(
    "/accounts/{account_id:str}/withdraw",
    status_code=200,
    summary="Withdraw money",
    dto=StrictJSON[AmountRequest],
)
async def withdraw(
    account_id: AccountIdPath,
    data: JSONBody[AmountRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> CommandResponse:
    command = Withdraw(_account_id(account_id), data.amount, data.expected_version, data.reference)
    return _answer(await _bus(state).execute(command, checked_key(idempotency_key), client=client))


@command(
    "/accounts/{account_id:str}/close",
    status_code=200,
    summary="Close an account",
    operation_class=OptionalBody,
    dto=StrictJSON[CloseAccountRequest],
)
async def close_account(
    account_id: AccountIdPath,
    state: State,
    client: NamedDependency[str],
    data: JSONBody[CloseAccountRequest | None] = None,
    idempotency_key: IdempotencyKey = None,
) -> CommandResponse:
    expected = data.expected_version if data is not None else None
    command = CloseAccount(_account_id(account_id), expected)
    return _answer(await _bus(state).execute(command, checked_key(idempotency_key), client=client))


@command(
    "/accounts/{account_id:str}/overdraft-limit",
    status_code=200,
    summary="Set the overdraft limit",
    description="Withdrawals and outgoing transfers may then take the balance down to minus the "
    "limit (0 by default). A limit below the account's current debt is 409 limit_below_balance.",
    dto=StrictJSON[OverdraftLimitRequest],
)
async def set_overdraft_limit(
    account_id: AccountIdPath,
    data: JSONBody[OverdraftLimitRequest],
    state: State,
    client: NamedDependency[str],
    idempotency_key: IdempotencyKey = None,
) -> OverdraftLimitResponse:
    command = SetOverdraftLimit(
        _account_id(account_id), data.overdraft_limit, data.expected_version
    )
    outcome = await _bus(state).execute(command, checked_key(idempotency_key), client=client)
    return OverdraftLimitResponse(
        outcome.account_id,
        outcome.version,
        outcome.position,
        format_money(outcome.balance),
        format_money(command.limit),  # a retry has the same fingerprint, so the same limit
    )


@get(
    "/accounts/{account_id:str}/events",
    summary="The account's events (audit trail)",
    guards=[requires("read")],
    responses=_errors(400, 401, 403, 404, 503),
)
async def account_events(
    account_id: AccountIdPath,
    state: State,
    after_version: Annotated[
        int, QueryParameter(ge=0, le=2**31 - 1, schema_extra={"minimum": 0})  # Litestar drops ge=0
    ] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> EventsResponse:
    store: EventStore = state.store
    recorded = await store.read_stream(_account_id(account_id), after_version, limit)
    if not recorded and await store.stream_version(account_id) == 0:
        raise AccountNotFound(f"account {account_id!r} does not exist")
    personal_data: PersonalData = state.personal_data
    recorded = await personal_data.reveal(recorded)
    events = [
        EventResponse(
            str(e.event_id), e.type, e.version, e.position, e.payload, e.recorded_at, e.hash
        )
        for e in recorded
    ]
    return EventsResponse(account_id, events)
