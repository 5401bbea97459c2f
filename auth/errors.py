"""Auth failures as Litestar HTTP exceptions, and the handler that shapes their bodies.

They subclass Litestar's own 401/403/503 exceptions, so an app that maps `HTTPException` already
does the right thing; `BearerAuth` also registers `auth_error_response` for them, so every app
answers `{"error": ..., "detail": ...}` with the right headers whatever its own error mapper does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Unauthorized(NotAuthorizedException):
    code: ClassVar[str] = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, headers=BEARER_CHALLENGE)


class Forbidden(PermissionDeniedException):
    code: ClassVar[str] = "forbidden"

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail)


class AuthUnavailable(ServiceUnavailableException):
    code: ClassVar[str] = "auth_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, headers={"Retry-After": "1"})


AuthFailure = Unauthorized | Forbidden | AuthUnavailable


def auth_error_response(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, str]]:
    code = exc.code if isinstance(exc, AuthFailure) else "unauthorized"
    return Response(
        {"error": code, "detail": exc.detail},
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


AUTH_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Unauthorized: auth_error_response,
    Forbidden: auth_error_response,
    AuthUnavailable: auth_error_response,
}
