"""Error responses for both APIs, in the kernel's vocabulary (`kernel/errors.py`).

Each API maps its own side's errors in its `api/errors.py`; what the framework raises (bad
parameters, unknown routes, wrong methods) and what nobody expected are answered here, the same
way on both.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from kernel.errors import CODE_BY_HTTP_STATUS, ErrorBody, ErrorCode

log = logging.getLogger(__name__)

RETRY_AFTER = {"Retry-After": "1"}


def error_response(
    status: int,
    code: ErrorCode | str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    current_version: int | None = None,
    status_now: str | None = None,
) -> Response[ErrorBody]:
    body = ErrorBody(str(code), detail, current_version, status_now)
    return Response(body, status_code=status, headers=headers)


MISSING_BODY = "the request needs a JSON body"


def _problem(problem: dict[str, Any]) -> str:
    key, message = problem.get("key"), problem.get("message")
    if key == "data" and message == repr("data"):  # Litestar's word for a body left out
        return MISSING_BODY
    return f"{key}: {message}" if key else str(message)


def validation_detail(exc: ValidationException) -> str:
    problems = exc.extra if isinstance(exc.extra, list) else []
    messages = [_problem(p) for p in problems if isinstance(p, dict)]
    return "; ".join(messages) or "the request is not valid"


def on_validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorBody]:
    return error_response(exc.status_code, ErrorCode.VALIDATION_ERROR, validation_detail(exc))


def on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    code = CODE_BY_HTTP_STATUS.get(exc.status_code, ErrorCode.HTTP_ERROR)
    detail = str(exc.detail) if exc.status_code < 500 else "the service could not answer"
    return error_response(exc.status_code, code, detail, dict(exc.headers or {}))


def on_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.error("unexpected error", exc_info=exc)
    return error_response(500, ErrorCode.INTERNAL_ERROR, "an unexpected error occurred")
