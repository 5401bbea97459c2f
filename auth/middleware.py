"""Authentication for a Litestar app: `BearerAuth(resolver)` is the one thing an app adds.

The plugin installs the bearer-token middleware (outside `/health` and `/schema`), the OpenAPI
bearer security scheme, the JSON error handlers for 401/403/503, and a lifespan that opens and
closes the resolver. With `BANK_AUTH=off` every request gets a principal holding every scope
(so guards pass) and the app logs a warning when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from copy import copy
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.plugins import InitPlugin
from litestar.types import ASGIApp

from auth.errors import AUTH_EXCEPTION_HANDLERS, AuthUnavailable, Unauthorized
from auth.guards import AUTH_OFF_PRINCIPAL
from auth.resolver import KeyResolver, KeyStoreUnavailable
from auth.tokens import hash_token, looks_like_token

log = logging.getLogger(__name__)

OPEN_PATHS = [r"^/health$", r"^/schema(/|$)"]
"""Regexes of the paths that need no token (matched against the request path)."""

SECURITY_SCHEME_NAME = "BearerToken"
BEARER_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description="An API key from `bank apikey create`, sent as `Authorization: Bearer bank_...`.",
)
BEARER_REQUIREMENT: SecurityRequirement = {SECURITY_SCHEME_NAME: []}


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        resolver: KeyResolver,
        enabled: bool = True,
        exclude: list[str] | None = None,
    ) -> None:
        super().__init__(app, exclude=OPEN_PATHS if exclude is None else exclude)
        self.resolver = resolver
        self.enabled = enabled

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        if not self.enabled:
            return AuthenticationResult(user=AUTH_OFF_PRINCIPAL, auth=None)
        token = _bearer_token(connection.headers.get("authorization"))
        token_hash = hash_token(token)
        try:
            principal = await self.resolver(token_hash)
        except KeyStoreUnavailable as exc:
            log.warning("could not check an API key: %s", exc)
            raise AuthUnavailable("could not check the API key right now; retry shortly") from None
        if principal is None:
            raise Unauthorized("the bearer token is unknown or revoked")
        return AuthenticationResult(user=principal, auth=token_hash)


def _bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("send an API key as 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    if not looks_like_token(token):
        raise Unauthorized("the bearer token is unknown or revoked")
    return token


def auth_middleware(resolver: KeyResolver, *, enabled: bool = True) -> DefineMiddleware:
    return DefineMiddleware(BearerTokenMiddleware, resolver=resolver, enabled=enabled)


class BearerAuth(InitPlugin):
    """`Litestar(plugins=[BearerAuth(resolver, enabled=settings.auth.enabled)])`."""

    def __init__(self, resolver: KeyResolver, *, enabled: bool = True) -> None:
        self.resolver = resolver
        self.enabled = enabled

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, auth_middleware(self.resolver, enabled=self.enabled))
        # A new dict: the app's handler map may be a module-level constant shared with others.
        app_config.exception_handlers = {
            **app_config.exception_handlers,
            **AUTH_EXCEPTION_HANDLERS,
        }
        app_config.lifespan = [*app_config.lifespan, self._lifespan]
        if self.enabled and app_config.openapi_config is not None:
            _document_bearer_scheme(app_config)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        if not self.enabled:
            log.warning("authentication is OFF (BANK_AUTH=off): every request has every scope")
            yield
            return
        await self.resolver.open()
        try:
            yield
        finally:
            await self.resolver.close()


def _document_bearer_scheme(app_config: AppConfig) -> None:
    assert app_config.openapi_config is not None
    config = copy(app_config.openapi_config)  # the caller's config object stays untouched
    existing = config.components if isinstance(config.components, list) else [config.components]
    config.components = [
        *existing,
        Components(security_schemes={SECURITY_SCHEME_NAME: BEARER_SCHEME}),
    ]
    config.security = [*(config.security or []), BEARER_REQUIREMENT]
    app_config.openapi_config = config
