"""The error vocabulary both APIs answer with: one body, one list of stable codes.

Every error body is `{"error": <code>, "detail": <a sentence for people>}` (a version conflict also
says `current_version`). Codes are part of the public contract: clients branch on them, so a code
is never renamed or reused for something else.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class ErrorCode(StrEnum):
    # 4xx: the request, not the service
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    ACCOUNT_NOT_FOUND = "account_not_found"
    TRANSFER_NOT_FOUND = "transfer_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    ACCOUNT_EXISTS = "account_exists"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    ACCOUNT_CLOSED = "account_closed"
    BALANCE_NOT_ZERO = "balance_not_zero"
    VERSION_CONFLICT = "version_conflict"
    SAME_ACCOUNT = "same_account"
    CURRENCY_MISMATCH = "currency_mismatch"
    TRANSFER_EXISTS = "transfer_exists"
    ALREADY_REVERSED = "already_reversed"
    NOT_REVERSIBLE = "not_reversible"
    LIMIT_BELOW_BALANCE = "limit_below_balance"
    BATCH_FAILED = "batch_failed"
    LINKED_COMMAND_FAILED = "linked_command_failed"
    IDEMPOTENCY_KEY_IN_FLIGHT = "idempotency_key_in_flight"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    REQUEST_TOO_LARGE = "request_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TOO_MANY_REQUESTS = "too_many_requests"
    HTTP_ERROR = "http_error"
    # 5xx: the service; each 503 comes with Retry-After
    STORE_UNAVAILABLE = "store_unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"
    COMMAND_TIMED_OUT = "command_timed_out"
    PROJECTION_BEHIND = "projection_behind"
    REDIS_UNAVAILABLE = "redis_unavailable"
    AUTH_UNAVAILABLE = "auth_unavailable"
    INTERNAL_ERROR = "internal_error"


CODE_BY_HTTP_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.REQUEST_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.TOO_MANY_REQUESTS,
}
"""The code of an error the HTTP framework raised itself (routing, body size, content type)."""


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    error: str
    """A stable code (`ErrorCode`)."""
    detail: str
    """A sentence for people; never internals."""
    current_version: int | None = None
    """With `version_conflict`: the account's version now."""


class CommandError(msgspec.Struct, frozen=True):
    """One command's part in a failed batch: its index and its code (`linked_command_failed` for
    every command but the one that failed)."""

    index: int
    error: str


class BatchErrorBody(msgspec.Struct, frozen=True):
    """`batch_failed`: which command of an atomic batch failed, and each command's code."""

    error: str
    detail: str
    failed_index: int
    results: list[CommandError]
