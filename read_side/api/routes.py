"""The query API's routes: parse the query, ask the reader, return a Struct. Nothing else.

The handlers take the readers from the app's state (`QueryReads`, set by the lifespan) instead of
as Litestar dependencies: Litestar resolves two or more dependencies of a handler concurrently, in
an anyio task group with a task each, which cost a balance read more than its Redis round trip
(docs/benchmarks.md, 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from auth.guards import requires
from kernel.errors import ErrorBody
from kernel.identifiers import ACCOUNT_ID
from kernel.read_model_layout import BALANCES, STATEMENTS
from read_side.errors import AccountNotFound
from read_side.freshness import CheckpointWatcher
from read_side.history import HistoryReader
from read_side.instants import parse_instant, time_range
from read_side.readers import ReadModelReader, SortKey, SortOrder
from read_side.views import (
    AccountsPage,
    Balance,
    Hold,
    HoldsPage,
    ProjectionStatus,
    Statement,
    Summary,
    Transfer,
)

AnyRequest = Request[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class QueryReads:
    """What the routes read with, made once per process by the app's lifespan."""

    reader: ReadModelReader
    history: HistoryReader
    watcher: CheckpointWatcher

    async def caught_up(self, projection: str, min_position: int | None, wait_ms: int) -> None:
        """Read-your-writes: with `min_position`, wait until `projection` has reached it."""
        if min_position is not None:
            await self.watcher.wait_for(projection, min_position, wait_ms)


STATE_KEY = "reads"
"""Where the lifespan keeps the process's `QueryReads` in the app state."""


def reads_of(request: AnyRequest) -> QueryReads:
    reads: QueryReads = request.app.state[STATE_KEY]
    return reads


AccountId = Annotated[
    str, PathParameter(min_length=1, max_length=64, description="The account id.")
]
TransferId = Annotated[
    str, PathParameter(min_length=1, max_length=64, description="The transfer id.")
]
HoldId = Annotated[str, PathParameter(min_length=1, max_length=64, description="The hold id.")]
HoldStatus = Literal["pending", "captured", "voided", "expired"]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size, 1..500.")]
# Litestar leaves a `ge=0` out of the OpenAPI document; schema_extra puts the minimum back.
NOT_NEGATIVE = {"minimum": 0}
BIGINT_MAX = 2**63 - 1
"""Store positions and versions are 64-bit; a larger number is a 400, not a question to Redis."""

MinPosition = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=BIGINT_MAX,
        schema_extra=NOT_NEGATIVE,
        description="Read-your-writes: wait until the projection has applied this store position "
        "(the `position` a command returned).",
    ),
]
WaitMs = Annotated[
    int,
    QueryParameter(
        ge=0,
        le=10_000,
        schema_extra=NOT_NEGATIVE,
        description="How long to wait for `min_position`, in ms.",
    ),
]

INSTANT = {"format": "date-time"}


def _instant(description: str, name: str | None = None) -> Any:
    """A timestamp parameter: text here, parsed by `read_side.instants` for a clear 400."""
    return QueryParameter(name=name, max_length=64, schema_extra=INSTANT, description=description)


AsOf = Annotated[
    str | None,
    _instant(
        "RFC 3339 timestamp with a time zone: answer with the balance as it stood after the "
        "account's last event recorded at or before this instant."
    ),
]
From = Annotated[
    str | None,
    _instant("RFC 3339 timestamp with a time zone: only entries recorded at or after it.", "from"),
]
To = Annotated[
    str | None,
    _instant("RFC 3339 timestamp with a time zone: only entries recorded at or before it.", "to"),
]


def _account_id(raw: str) -> str:
    """The write side's rule: an id it could never have opened names no account (404)."""
    if not ACCOUNT_ID.matches(raw):
        raise AccountNotFound(raw[:64])
    return raw


READ = [requires("read")]
ADMIN = [requires("admin")]


class Health(msgspec.Struct, frozen=True):
    status: str


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    described = {
        401: "unauthorized: no valid bearer token.",
        403: "forbidden: the API key lacks the scope.",
        400: "validation_error: a query parameter is invalid (a timestamp: not RFC 3339 with a "
        "time zone, or `from` after `to`).",
        404: "account_not_found (transfer_not_found for a transfer, hold_not_found for a hold): "
        "not in the read model, or not opened yet at `as_of`.",
        503: "projection_behind (with Retry-After) or redis_unavailable.",
    }
    return {
        s: ResponseSpec(data_container=ErrorBody, description=described[s], generate_examples=False)
        for s in statuses
    }


@get(
    "/accounts/{account_id:str}/balance",
    responses=error_responses(401, 403, 400, 404, 503),
    guards=READ,
)
async def get_balance(
    request: AnyRequest,
    account_id: AccountId,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 2000,
) -> Balance:
    """An account's balance, as of the `position` it reports (or as it stood at `as_of`)."""
    account_id = _account_id(account_id)
    instant = None if as_of is None else parse_instant(as_of, "as_of")
    reads = reads_of(request)
    await reads.caught_up(BALANCES, min_position, wait_ms)
    if instant is not None:
        return await reads.history.balance_as_of(account_id, instant)
    return await reads.reader.balance(account_id)


@get(
    "/accounts/{account_id:str}/statement",
    responses=error_responses(401, 403, 400, 404, 503),
    guards=READ,
)
async def get_statement(
    request: AnyRequest,
    account_id: AccountId,
    limit: Limit = 50,
    before_version: Annotated[
        int | None,
        QueryParameter(ge=1, le=BIGINT_MAX, description="Only entries older than this version."),
    ] = None,
    since: From = None,
    until: To = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 2000,
) -> Statement:
    """An account's statement entries, newest first (only those recorded between `from` and `to`,
    both included, when given)."""
    account_id = _account_id(account_id)
    start, end = time_range(since, until)
    reads = reads_of(request)
    await reads.caught_up(STATEMENTS, min_position, wait_ms)
    if start is None and end is None:
        return await reads.reader.statement(account_id, limit, before_version)
    return await reads.history.statement_between(account_id, limit, before_version, start, end)


@get(
    "/transfers/{transfer_id:str}", responses=error_responses(401, 403, 400, 404, 503), guards=READ
)
async def get_transfer(
    request: AnyRequest,
    transfer_id: TransferId,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 2000,
) -> Transfer:
    """A transfer between two accounts: who paid whom, how much, and its status."""
    reads = reads_of(request)
    await reads.caught_up(BALANCES, min_position, wait_ms)
    return await reads.reader.transfer(transfer_id)


@get("/holds/{hold_id:str}", responses=error_responses(401, 403, 400, 404, 503), guards=READ)
async def get_hold(
    request: AnyRequest,
    hold_id: HoldId,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 2000,
) -> Hold:
    """A hold: who reserved what for whom, until when, and its status."""
    reads = reads_of(request)
    await reads.caught_up(BALANCES, min_position, wait_ms)
    return await reads.reader.hold(hold_id)


@get(
    "/accounts/{account_id:str}/holds",
    responses=error_responses(401, 403, 400, 404, 503),
    guards=READ,
)
async def list_holds(
    request: AnyRequest,
    account_id: AccountId,
    status: Annotated[
        HoldStatus | None, QueryParameter(description="Only holds with this status.")
    ] = None,
    limit: Limit = 50,
    before_position: Annotated[
        int | None,
        QueryParameter(
            ge=1, le=BIGINT_MAX, description="Only holds placed before this `next_before_position`."
        ),
    ] = None,
    min_position: MinPosition = None,
    wait_ms: WaitMs = 2000,
) -> HoldsPage:
    """The holds an account takes part in (either side), newest first."""
    account_id = _account_id(account_id)
    reads = reads_of(request)
    await reads.caught_up(BALANCES, min_position, wait_ms)
    return await reads.reader.holds_of(account_id, status, limit, before_position)


@get("/accounts", responses=error_responses(401, 403, 400, 503), guards=READ)
async def list_accounts(
    request: AnyRequest,
    sort: Annotated[SortKey, QueryParameter(description="balance or id")] = "id",
    order: Annotated[SortOrder, QueryParameter(description="asc or desc")] = "asc",
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter(max_length=2000)] = None,
) -> AccountsPage:
    """Accounts sorted by balance or id, a page at a time (keyset cursor)."""
    return await reads_of(request).reader.accounts(sort, order, limit, cursor)


@get("/summary", responses=error_responses(401, 403, 503), guards=READ)
async def get_summary(request: AnyRequest) -> Summary:
    """Counts and balance totals per currency over all accounts."""
    return await reads_of(request).reader.summary()


@get("/projections", responses=error_responses(401, 403, 503), guards=ADMIN)
async def list_projections(request: AnyRequest) -> list[ProjectionStatus]:
    """Each projection's checkpoint, the store head announced to Redis and the lag between them."""
    return await reads_of(request).reader.projections()


@get("/health", responses=error_responses(503))
async def health(request: AnyRequest) -> Health:
    """200 when Redis answers; a Redis error becomes 503 redis_unavailable (api/errors.py)."""
    await reads_of(request).reader.ping()
    return Health("ok")


ROUTES = [
    get_balance,
    get_statement,
    get_transfer,
    get_hold,
    list_holds,
    list_accounts,
    get_summary,
    list_projections,
    health,
]
