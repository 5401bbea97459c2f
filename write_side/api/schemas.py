"""Request and response bodies of the write API (msgspec Structs: decoded and validated in one pass)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from kernel.identifiers import ACCOUNT_ID, CURRENCY, OWNER, REFERENCE
from kernel.money import AMOUNT_TEXT, MAX_AMOUNT

AccountId = Annotated[
    str,
    msgspec.Meta(
        pattern=ACCOUNT_ID.pattern, description=ACCOUNT_ID.description, examples=["alice-checking"]
    ),
]
Currency = Annotated[str, msgspec.Meta(pattern=CURRENCY.pattern, description=CURRENCY.description)]
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
    # Any, not Decimal: a string must follow AMOUNT_TEXT exactly, and only the untyped value tells
    # a string from a number (StrictJSON decodes an untyped JSON number to a Decimal, exactly).
    Any,
    msgspec.Meta(
        description=f"Positive, at most two decimals and {MAX_AMOUNT}; a JSON string or number.",
        examples=["12.50"],
        extra_json_schema={
            "extra": {
                "type": ["string", "number"],
                "pattern": AMOUNT_TEXT,  # what a string looks like
                "exclusiveMinimum": 0,  # and the range of a number
                "maximum": int(MAX_AMOUNT),
            }
        },
    ),
]


Reference = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=REFERENCE.max_length,
        description="Free text kept with the event (no control characters).",
        examples=["invoice 2026-114"],
    ),
]


class OpenAccountRequest(msgspec.Struct, forbid_unknown_fields=True):
    owner: Annotated[str, msgspec.Meta(min_length=1, max_length=OWNER.max_length)]
    currency: Currency = "USD"
    account_id: AccountId | None = None
    expected_version: ExpectedVersion | None = None


class AmountRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    expected_version: ExpectedVersion | None = None
    reference: Reference | None = None

    def __post_init__(self) -> None:
        # A wrong JSON type is a malformed body (400); a wrong value, a refused command (422).
        if isinstance(self.amount, bool) or not isinstance(self.amount, str | int | Decimal):
            raise TypeError("Expected `str | number` - at `$.amount`")


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
