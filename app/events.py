"""Event contracts shared by the write side and the projectors.

Each event is a frozen msgspec Struct; its class name is the stored `type` and its fields are the
stored `payload`. Money fields are Decimal and travel as strings ("12.50"). A change to a payload's
shape bumps SCHEMA_VERSION and adds an upcaster here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import msgspec

SCHEMA_VERSION = 1


class AccountOpened(msgspec.Struct, frozen=True):
    owner: str
    currency: str


class MoneyDeposited(msgspec.Struct, frozen=True):
    amount: Decimal


class MoneyWithdrawn(msgspec.Struct, frozen=True):
    amount: Decimal


class AccountClosed(msgspec.Struct, frozen=True):
    pass


DomainEvent: TypeAlias = AccountOpened | MoneyDeposited | MoneyWithdrawn | AccountClosed

EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls for cls in (AccountOpened, MoneyDeposited, MoneyWithdrawn, AccountClosed)
}


class UnknownEventType(ValueError):
    """The store holds an event type this code does not know."""


def event_type(event: DomainEvent) -> str:
    return type(event).__name__


def payload_of(event: DomainEvent) -> dict[str, Any]:
    """The JSON-ready payload: builtins only, Decimals as strings."""
    result: dict[str, Any] = msgspec.to_builtins(event)
    return result


def event_from_payload(type_name: str, payload: dict[str, Any]) -> DomainEvent:
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    return msgspec.convert(payload, cls)


_DECODERS = {name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()}


def event_from_json(type_name: str, payload_json: str | bytes) -> DomainEvent:
    """Decode a stored payload straight into its event type: the fast path of a replay."""
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        raise UnknownEventType(type_name)
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

    def to_domain(self) -> DomainEvent:
        return event_from_payload(self.type, self.payload)
