"""Authorisation: `requires(scope)` is the guard a route handler (or router) carries.

The middleware has already turned the bearer token into a `Principal`; the guard only compares
scopes. A request that reaches a guarded handler without a principal (middleware missing, or the
path excluded by mistake) is refused, so a wiring slip fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from auth.errors import Forbidden, Unauthorized
from auth.tokens import SCOPES, checked_scopes, grants


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the scopes of their key (`request.user`) and, where the key store knows it,
    a stable id of the key (never derived from the token): per-client state such as idempotency
    keys is kept under it."""

    scopes: frozenset[str]
    key_id: str | None = None
    """`key-<row id>` from SQL; `anonymous` with auth off; None from the Redis mirror (scopes only)."""

    def allows(self, scope: str) -> bool:
        return grants(self.scopes, scope)


ANONYMOUS_KEY_ID = "anonymous"

AUTH_OFF_PRINCIPAL = Principal(frozenset(SCOPES), ANONYMOUS_KEY_ID)
"""Every request's principal when `BANK_AUTH=off`: every caller is the same anonymous client."""


def key_id_of(row_id: int) -> str:
    """The stable id of the `api_keys` row `row_id`: unique for ever, unlike a key's name."""
    return f"key-{row_id}"


def requires(scope: str) -> Guard:
    """A guard that lets through keys holding `scope` (or `admin`); 403 for the others."""
    checked_scopes([scope])  # a typo in a scope name fails when the app is built

    # async: Litestar runs a plain-function guard in a thread pool, on every request.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.scope.get("user")
        if not isinstance(principal, Principal):
            raise Unauthorized("a bearer token is required")
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the {scope!r} scope")

    guard.__name__ = f"requires_{scope}"
    return guard
