"""Request and response bodies of the write API (msgspec Structs: decoded and validated in one pass)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

AccountId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="1 to 64 letters, digits, '_' or '-'",
        examples=["alice-checking"],
    ),
]
ExpectedVersion = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=2**31 - 1,
        description="The account's version as the client last saw it, before this command.",
        # Litestar drops a falsy `ge` from the OpenAPI schema; "extra" is copied onto it verbatim.
        extra_json_schema={"extra": {"minimum": 0}},
    ),
]
Amount = Annotated[
    Decimal,
    msgspec.Meta(
        description="Positive, at most two decimals and 1000000000.00; a JSON string or number.",
        examples=["12.50"],
        extra_json_schema={
            "extra": {
                "type": ["string", "number"],
                "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$",  # what a string looks like
                "exclusiveMinimum": 0,  # and the range of a number
                "maximum": 1_000_000_000,
            }
        },
    ),
]


class OpenAccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    owner: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    account_id: AccountId | None = None
    expected_version: ExpectedVersion | None = None


class AmountRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    expected_version: ExpectedVersion | None = None


class CloseAccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    expected_version: ExpectedVersion | None = None


class OpenedResponse(msgspec.Struct):
    account_id: str
    version: int
    position: int


class CommandResponse(msgspec.Struct):
    account_id: str
    version: int
    position: int
    balance: str


class EventResponse(msgspec.Struct):
    event_id: str
    type: str
    version: int
    position: int
    payload: dict[str, Any]
    recorded_at: datetime


class EventsResponse(msgspec.Struct):
    account_id: str
    events: list[EventResponse]


class HealthResponse(msgspec.Struct):
    status: str
    database: str


class ErrorResponse(msgspec.Struct):
    error: str
    """A stable code: validation_error, account_not_found, store_unavailable, ..."""
    detail: str
    """A sentence for people."""


class ConflictResponse(msgspec.Struct):
    error: str
    detail: str
    current_version: int | None = None
    """With version_conflict: the account's version now."""
