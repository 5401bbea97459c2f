"""Event contracts shared by the write side and the projectors.

Each event is a frozen msgspec Struct; its class name is the stored `type` and its fields are the
stored `payload`. Money fields are Decimal and travel as strings ("12.50"). A change to a payload's
shape bumps SCHEMA_VERSION and adds one step to UPCASTERS: every reader (aggregate loads, projectors)
decodes through `event_from_json` / `event_from_payload`, which upcast older payloads first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec

from kernel.personal_data import Personal
from kernel.upcasting import Payload, UpcasterChain

SCHEMA_VERSION = 3
"""1: the first shapes. 2: deposits and withdrawals carry an optional `reference`. 3: personal
fields (`AccountOpened.owner`) may be stored sealed, `{"enc": "..."}` (kernel/personal_data.py)."""


class AccountOpened(msgspec.Struct, frozen=True):
    owner: Personal
    """Clear text when decided; sealed as stored with encryption on (PERSONAL_FIELDS)."""
    currency: str


class MoneyDeposited(msgspec.Struct, frozen=True, omit_defaults=True):
    amount: Decimal
    reference: str | None = None


class MoneyWithdrawn(msgspec.Struct, frozen=True, omit_defaults=True):
    amount: Decimal
    reference: str | None = None


class AccountClosed(msgspec.Struct, frozen=True):
    pass


class OverdraftLimitSet(msgspec.Struct, frozen=True):
    """The account may go down to minus `limit` (0: no overdraft, the default)."""

    limit: Decimal


class TransferSent(msgspec.Struct, frozen=True, omit_defaults=True):
    """Money left this account for `counterparty`: one side of a transfer, appended in the same
    store transaction as the `TransferReceived` on the other side."""

    transfer_id: str
    counterparty: str
    amount: Decimal
    reference: str | None = None
    reversal_of: str | None = None
    """Set on a reversal: the transfer it moves back (omitted otherwise, so older payloads and
    ordinary transfers keep their shape)."""


class TransferReceived(msgspec.Struct, frozen=True, omit_defaults=True):
    """Money arrived on this account from `counterparty` (the other side of a `TransferSent`)."""

    transfer_id: str
    counterparty: str
    amount: Decimal
    reference: str | None = None
    reversal_of: str | None = None
    """Set on a reversal, as on its `TransferSent`."""


class PersonalDataErased(msgspec.Struct, frozen=True):
    """The account's personal-data key was destroyed (`bank forget`): from here on its personal
    fields read as `[erased]`. The account itself, its money and its history stay."""


DomainEvent: TypeAlias = (
    AccountOpened
    | MoneyDeposited
    | MoneyWithdrawn
    | AccountClosed
    | OverdraftLimitSet
    | TransferSent
    | TransferReceived
    | PersonalDataErased
)

EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        AccountOpened,
        MoneyDeposited,
        MoneyWithdrawn,
        AccountClosed,
        OverdraftLimitSet,
        TransferSent,
        TransferReceived,
        PersonalDataErased,
    )
}


class UnknownEventType(ValueError):
    """The store holds an event type this code does not know."""


def event_type(event: DomainEvent) -> str:
    return type(event).__name__


def payload_of(event: DomainEvent) -> dict[str, Any]:
    """The JSON-ready payload: builtins only, Decimals as strings."""
    result: dict[str, Any] = msgspec.to_builtins(event)
    return result


def _reference_on_money_movements(type_name: str, payload: Payload) -> Payload:
    if type_name in ("MoneyDeposited", "MoneyWithdrawn"):
        return {**payload, "reference": None}
    return payload


def _personal_fields_may_be_sealed(type_name: str, payload: Payload) -> Payload:
    """Version 3 only widened personal fields (clear text or sealed): a version-2 payload, which
    holds them in clear, is already a valid version-3 one. The bump keeps older code from
    misreading a sealed field as a name (it refuses version 3 with CannotUpcast)."""
    return payload


UPCASTERS = UpcasterChain(
    current=SCHEMA_VERSION,
    steps={1: _reference_on_money_movements, 2: _personal_fields_may_be_sealed},
)


def event_from_payload(
    type_name: str, payload: dict[str, Any], schema_version: int = SCHEMA_VERSION
) -> DomainEvent:
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    if schema_version != SCHEMA_VERSION:
        payload = UPCASTERS.upcast(type_name, schema_version, payload)
    return msgspec.convert(payload, cls)


_DECODERS = {name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()}


def event_from_json(
    type_name: str, payload_json: str | bytes, schema_version: int = SCHEMA_VERSION
) -> DomainEvent:
    """Decode a stored payload into its event type; today's shape takes the fast path."""
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        raise UnknownEventType(type_name)
    if schema_version != SCHEMA_VERSION:
        return event_from_payload(type_name, msgspec.json.decode(payload_json), schema_version)
    return decoder.decode(payload_json)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended: what the caller decides, before the store numbers it."""

    type: str
    payload: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_domain(cls, event: DomainEvent, metadata: dict[str, Any] | None = None) -> NewEvent:
        return cls(type=event_type(event), payload=payload_of(event), metadata=metadata or {})


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the store holds it: numbered in its stream and in the global order."""

    position: int
    stream_id: str
    version: int
    event_id: uuid.UUID
    type: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    schema_version: int
    recorded_at: datetime
    hash: str | None = None
    """The event's link in the hash chain (kernel/chain.py)."""

    def to_domain(self) -> DomainEvent:
        return event_from_payload(self.type, self.payload, self.schema_version)
