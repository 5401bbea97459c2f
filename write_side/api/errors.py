"""The one place where write-side failures become HTTP responses.

Every error body is `{"error": <stable code>, "detail": <sentence>}`. Expected operational failures
(the database is away) are 503s; nothing about SQL, stack traces or file paths ever leaves here.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from write_side.domain import errors as domain

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[domain.LedgerError], int] = {
    domain.InvalidCommand: 422,
    domain.AccountNotFound: 404,
    domain.AccountExists: 409,
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

CODE_BY_HTTP_STATUS = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    return Response(
        {"error": code, "detail": detail, **extra},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def ledger_error(_: Request[Any, Any, Any], exc: domain.LedgerError) -> Response[dict[str, Any]]:
    status = next(
        (code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)),
        HTTP_500_INTERNAL_SERVER_ERROR,
    )
    extra: dict[str, Any] = {}
    if isinstance(exc, domain.VersionConflict):
        extra["current_version"] = exc.current_version
    headers = {"Retry-After": "1"} if status == HTTP_503_SERVICE_UNAVAILABLE else None
    return error_response(status, exc.code, str(exc), headers, **extra)


def validation_error(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    messages = [
        f"{p.get('key')}: {p.get('message')}" if p.get("key") else str(p.get("message"))
        for p in problems
        if isinstance(p, dict)
    ]
    detail = "; ".join(messages) or "the request is not valid"
    return error_response(exc.status_code, "validation_error", detail)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    code = CODE_BY_HTTP_STATUS.get(exc.status_code, "http_error")
    detail = exc.detail if exc.status_code < 500 else "the service could not answer"
    return error_response(exc.status_code, code, detail, exc.headers)


def database_unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A database error that escaped a read. Reads come before a command's append (or after one
    that provably committed nothing), so nothing was recorded; an append's own failures arrive as
    StoreUnavailable or OutcomeUnknown (write_side/store/group_commit.py)."""
    log.warning("event store unavailable: %s", type(exc).__name__)
    unavailable = domain.StoreUnavailable()
    return error_response(
        HTTP_503_SERVICE_UNAVAILABLE, unavailable.code, str(unavailable), {"Retry-After": "1"}
    )


def unexpected_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return database_unavailable(_, exc)
    log.exception("unexpected error", exc_info=exc)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred"
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    domain.LedgerError: ledger_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    sqlalchemy.exc.OperationalError: database_unavailable,
    sqlalchemy.exc.InterfaceError: database_unavailable,
    sqlalchemy.exc.TimeoutError: database_unavailable,
    ConnectionError: database_unavailable,
    Exception: unexpected_error,
}
