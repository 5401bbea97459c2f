"""The one place where write-side failures become HTTP responses, in the shared vocabulary
(`kernel/errors.py`, `web/errors.py`). Expected operational failures (the database is away) are
503s; nothing about SQL, stack traces or file paths ever leaves here.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from kernel.errors import BatchErrorBody, CommandError, ErrorBody, ErrorCode
from kernel.master_key import InvalidMasterKey
from web.errors import RETRY_AFTER, error_response, on_http, on_unexpected, on_validation
from write_side.domain import errors as domain
from write_side.store.personal_keys import MasterKeyMissing

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[domain.LedgerError], int] = {
    domain.InvalidCommand: 422,
    domain.AccountNotFound: 404,
    domain.AccountExists: 409,
    domain.TransferIdTaken: 409,
    domain.TransferNotFound: 404,
    domain.AlreadyReversed: 409,
    domain.NotReversible: 409,
    domain.CurrencyMismatch: 409,
    domain.LimitBelowBalance: 409,
    domain.BatchFailed: 409,
    domain.InsufficientFunds: 409,
    domain.AccountIsClosed: 409,
    domain.BalanceNotZero: 409,
    domain.VersionConflict: 409,
    domain.IdempotencyKeyReused: 422,
    domain.IdempotencyKeyInFlight: 409,
    domain.CommandTimedOut: 503,
    domain.StoreUnavailable: 503,
    domain.OutcomeUnknown: 503,
}


def ledger_error(
    _: Request[Any, Any, Any], exc: domain.LedgerError
) -> Response[ErrorBody] | Response[BatchErrorBody]:
    if isinstance(exc, domain.BatchFailed):
        return batch_failed(exc)
    status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 500)
    current_version = exc.current_version if isinstance(exc, domain.VersionConflict) else None
    headers = RETRY_AFTER if status == 503 else None
    return error_response(status, exc.code, str(exc), headers, current_version=current_version)


def batch_failed(exc: domain.BatchFailed) -> Response[BatchErrorBody]:
    """409 naming the command that failed with its own code; every other one is linked."""
    codes = [
        str(exc.cause.code if i == exc.failed_index else ErrorCode.LINKED_COMMAND_FAILED)
        for i in range(exc.size)
    ]
    results = [CommandError(i, code) for i, code in enumerate(codes)]
    body = BatchErrorBody(str(exc.code), str(exc), exc.failed_index, results)
    return Response(body, status_code=409)


def database_unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """A database error that escaped a read. Reads come before a command's append (or after one
    that provably committed nothing), so nothing was recorded; an append's own failures arrive as
    StoreUnavailable or OutcomeUnknown (write_side/store/group_commit.py)."""
    log.warning("event store unavailable: %s", type(exc).__name__)
    unavailable = domain.StoreUnavailable()
    return error_response(503, unavailable.code, str(unavailable), RETRY_AFTER)


def master_key_problem(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Personal data to seal or reveal, and no (or another) BANK_MASTER_KEY: a misconfiguration
    the process's start-up check missed (the store was away then). Nothing was recorded."""
    log.error("personal data: %s", exc)
    detail = "personal data cannot be sealed or read here (master key); nothing was recorded"
    return error_response(503, ErrorCode.STORE_UNAVAILABLE, detail, RETRY_AFTER)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return database_unavailable(request, exc)
    return on_unexpected(request, exc)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    domain.LedgerError: ledger_error,
    ValidationException: on_validation,
    HTTPException: on_http,
    sqlalchemy.exc.OperationalError: database_unavailable,
    sqlalchemy.exc.InterfaceError: database_unavailable,
    sqlalchemy.exc.TimeoutError: database_unavailable,
    ConnectionError: database_unavailable,
    MasterKeyMissing: master_key_problem,
    InvalidMasterKey: master_key_problem,
    Exception: unexpected_error,
}
