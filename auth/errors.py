"""Auth failures as Litestar HTTP exceptions, and the handler that shapes their bodies.

They subclass Litestar's own 401/403/503 exceptions, so an app that maps `HTTPException` already
does the right thing; `BearerAuth` also registers `auth_error_response` for them, so every app
answers `{"error": ..., "detail": ...}` with the right headers whatever its own error mapper does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)

from kernel.errors import ErrorBody, ErrorCode
from web.errors import error_response

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Unauthorized(NotAuthorizedException):
    code: ClassVar[ErrorCode] = ErrorCode.UNAUTHORIZED

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, headers=BEARER_CHALLENGE)


class Forbidden(PermissionDeniedException):
    code: ClassVar[ErrorCode] = ErrorCode.FORBIDDEN

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail)


class AuthUnavailable(ServiceUnavailableException):
    code: ClassVar[ErrorCode] = ErrorCode.AUTH_UNAVAILABLE

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, headers={"Retry-After": "1"})


AuthFailure = Unauthorized | Forbidden | AuthUnavailable


def auth_error_response(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    code = exc.code if isinstance(exc, AuthFailure) else ErrorCode.UNAUTHORIZED
    return error_response(exc.status_code, code, exc.detail, dict(exc.headers or {}))


AUTH_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Unauthorized: auth_error_response,
    Forbidden: auth_error_response,
    AuthUnavailable: auth_error_response,
}
