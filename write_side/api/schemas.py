"""Request and response bodies of the write API (msgspec Structs: decoded and validated in one pass)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from kernel.identifiers import ACCOUNT_ID, CURRENCY, OWNER, REFERENCE
from kernel.money import AMOUNT_TEXT, MAX_AMOUNT
from write_side.commands import MAX_BATCH

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


def _check_amount_type(value: Any, name: str = "amount") -> None:
    # A wrong JSON type is a malformed body (400); a wrong value, a refused command (422).
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"Expected `str | number` - at `$.{name}`")


class AmountRequest(msgspec.Struct, forbid_unknown_fields=True):
    amount: Amount
    expected_version: ExpectedVersion | None = None
    reference: Reference | None = None

    def __post_init__(self) -> None:
        _check_amount_type(self.amount)


class OverdraftLimitRequest(msgspec.Struct, forbid_unknown_fields=True):
    overdraft_limit: Annotated[
        Any,
        msgspec.Meta(
            description="Zero or more, at most two decimals; a JSON string or number. "
            "0 (the default) allows no overdraft.",
            examples=["100.00"],
            extra_json_schema={"extra": {"type": ["string", "number"], "pattern": AMOUNT_TEXT}},
        ),
    ]
    expected_version: ExpectedVersion | None = None

    def __post_init__(self) -> None:
        _check_amount_type(self.overdraft_limit, "overdraft_limit")


class TransferRequest(msgspec.Struct, forbid_unknown_fields=True):
    from_account: AccountId
    to_account: AccountId
    amount: Amount
    transfer_id: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=ACCOUNT_ID.pattern,
                description="Unique in the whole ledger; a retry with the same id and body gets "
                "the first answer. Generated when absent.",
            ),
        ]
        | None
    ) = None
    reference: Reference | None = None

    def __post_init__(self) -> None:
        _check_amount_type(self.amount)


class ReverseTransferRequest(msgspec.Struct, forbid_unknown_fields=True):
    reference: Reference | None = None


class OpenAccountItem(OpenAccountRequest, tag_field="type", tag="open_account"):
    pass


class DepositItem(AmountRequest, tag_field="type", tag="deposit", kw_only=True):
    account_id: AccountId


class WithdrawItem(AmountRequest, tag_field="type", tag="withdraw", kw_only=True):
    account_id: AccountId


class TransferItem(TransferRequest, tag_field="type", tag="transfer"):
    pass


BatchItem = OpenAccountItem | DepositItem | WithdrawItem | TransferItem


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    commands: Annotated[
        list[BatchItem],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_BATCH,
            description="Applied in order, all in one transaction or none; each is "
            '`{"type": "open_account"|"deposit"|"withdraw"|"transfer", ...its body}`.',
        ),
    ]


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


class OverdraftLimitResponse(msgspec.Struct):
    account_id: str
    version: int
    position: int
    balance: str
    overdraft_limit: str


class TransferSide(msgspec.Struct):
    account_id: str
    version: int
    balance: str


class TransferResponse(msgspec.Struct):
    transfer_id: str
    status: str
    position: int
    from_: TransferSide = msgspec.field(name="from")
    to: TransferSide


class ReversalResponse(TransferResponse):
    reversal_of: str
    """The transfer this one moves back."""


class BatchResponse(msgspec.Struct):
    position: int
    results: list[dict[str, Any]]
    """Each command's usual answer, in order (all with the batch's position)."""


class EventResponse(msgspec.Struct):
    event_id: str
    type: str
    version: int
    position: int
    payload: dict[str, Any]
    recorded_at: datetime
    hash: str | None
    """The event's link in the hash chain (`bank verify`; docs/audit.md)."""


class EventsResponse(msgspec.Struct):
    account_id: str
    events: list[EventResponse]


class HealthResponse(msgspec.Struct):
    status: str
    database: str
