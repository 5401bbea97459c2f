"""The one place that turns errors into HTTP responses: {"error": "<code>", "detail": "<sentence>"}.

Bad query parameters (Litestar's ValidationException included) are 400 `validation_error`, an
unknown account 404 `account_not_found`, a projection that has not caught up 503
`projection_behind` with Retry-After, and Redis being down 503 `redis_unavailable`.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisError

from read_side.errors import AccountNotFound, InvalidCursor, ProjectionBehind, QueryError

logger = logging.getLogger(__name__)


class ErrorBody(msgspec.Struct, frozen=True):
    error: str
    """validation_error, account_not_found, projection_behind, redis_unavailable, ..."""
    detail: str


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(ErrorBody(code, detail), status_code=status, headers=headers)


def _validation_detail(exc: ValidationException) -> str:
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = [
        f"{item.get('key', 'parameter')}: {item.get('message', 'invalid')}"
        for item in problems
        if isinstance(item, dict)
    ]
    return "; ".join(parts) or str(exc.detail)


def _on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    return error_response(400, "validation_error", _validation_detail(exc))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


def _on_query_error(_: Request[Any, Any, Any], exc: QueryError) -> Response[ErrorBody]:
    if isinstance(exc, AccountNotFound):
        return error_response(404, "account_not_found", str(exc))
    if isinstance(exc, ProjectionBehind):
        return error_response(
            503, "projection_behind", str(exc), {"Retry-After": str(exc.retry_after_s)}
        )
    if isinstance(exc, InvalidCursor):
        return error_response(400, "validation_error", str(exc))
    return error_response(400, "bad_request", str(exc))


def _on_redis_error(_: Request[Any, Any, Any], exc: RedisError) -> Response[ErrorBody]:
    logger.warning("Redis unavailable: %s", exc)
    return error_response(
        503, "redis_unavailable", "the read models' Redis is unavailable; retry shortly"
    )


def _on_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    logger.error("unhandled error in the query API", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: _on_validation,
    HTTPException: _on_http,
    QueryError: _on_query_error,
    RedisError: _on_redis_error,
    Exception: _on_unexpected,
}
