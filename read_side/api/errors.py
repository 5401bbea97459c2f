"""The one place where query-side failures become HTTP responses, in the shared vocabulary
(`kernel/errors.py`, `web/errors.py`).

An unknown account is 404 `account_not_found`, an unknown transfer 404 `transfer_not_found`, an
unknown hold 404 `hold_not_found`, a bad cursor or timestamp 400 `validation_error`, a projection
that has not caught up 503 `projection_behind` with Retry-After, and Redis being down 503
`redis_unavailable`.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisError

from kernel.errors import ErrorBody, ErrorCode
from read_side.errors import (
    AccountNotFound,
    HoldNotFound,
    InvalidCursor,
    InvalidInstant,
    ProjectionBehind,
    QueryError,
    TransferNotFound,
)
from web.errors import RETRY_AFTER, error_response, on_http, on_unexpected, on_validation

logger = logging.getLogger(__name__)


def _on_query_error(_: Request[Any, Any, Any], exc: QueryError) -> Response[ErrorBody]:
    if isinstance(exc, AccountNotFound):
        return error_response(404, ErrorCode.ACCOUNT_NOT_FOUND, str(exc))
    if isinstance(exc, TransferNotFound):
        return error_response(404, ErrorCode.TRANSFER_NOT_FOUND, str(exc))
    if isinstance(exc, HoldNotFound):
        return error_response(404, ErrorCode.HOLD_NOT_FOUND, str(exc))
    if isinstance(exc, ProjectionBehind):
        headers = {"Retry-After": str(exc.retry_after_s)}
        return error_response(503, ErrorCode.PROJECTION_BEHIND, str(exc), headers)
    if isinstance(exc, InvalidCursor | InvalidInstant):
        return error_response(400, ErrorCode.VALIDATION_ERROR, str(exc))
    return error_response(400, ErrorCode.VALIDATION_ERROR, str(exc))


def _on_redis_error(_: Request[Any, Any, Any], exc: RedisError) -> Response[ErrorBody]:
    logger.warning("Redis unavailable: %s", exc)
    detail = "the read models' Redis is unavailable; retry shortly"
    return error_response(503, ErrorCode.REDIS_UNAVAILABLE, detail, RETRY_AFTER)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ValidationException: on_validation,
    HTTPException: on_http,
    QueryError: _on_query_error,
    RedisError: _on_redis_error,
    Exception: on_unexpected,
}
