"""API tokens: how they are made, hashed and checked, and what each scope allows.

Tokens carry 256 random bits, so a single unsalted SHA-256 is enough to make the stored hash
useless to a thief (there is nothing to brute-force, unlike a password). The prefix lets people and
secret scanners recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

TOKEN_PREFIX = "bank_"  # noqa: S105 (a public marker, not a secret)
TOKEN_BYTES = 32

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (WRITE, READ, ADMIN)
"""`admin` implies every other scope."""

_TOKEN_SHAPE = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{20,100}}$")


class UnknownScope(ValueError):
    """A scope name that is not one of `SCOPES`."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The hex SHA-256 of the token: what the database and the Redis mirror store."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(candidate: str) -> bool:
    """Cheap shape check: anything else is refused without a lookup."""
    return bool(_TOKEN_SHAPE.match(candidate))


def checked_scopes(scopes: Iterable[str]) -> frozenset[str]:
    held = frozenset(scopes)
    unknown = held - set(SCOPES)
    if unknown:
        raise UnknownScope(f"unknown scope(s) {sorted(unknown)}; choose from {', '.join(SCOPES)}")
    return held


def grants(held: frozenset[str], needed: str) -> bool:
    return needed in held or ADMIN in held


def scopes_to_text(scopes: Iterable[str]) -> str:
    """Stored form: the scopes in `SCOPES` order, space-separated (portable across databases)."""
    held = set(scopes)
    return " ".join(scope for scope in SCOPES if scope in held)


def scopes_from_text(text: str) -> frozenset[str]:
    return frozenset(text.split())
