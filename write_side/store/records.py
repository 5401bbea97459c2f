"""Plain records the event store takes and returns, and its own errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ANONYMOUS_CLIENT = "anonymous"
"""The client of every command when there is no API key to tell clients apart (BANK_AUTH=off)."""

ANY_CLIENT = "*"
"""The client of the records written before keys were scoped (migration 0004): like then, such a
record answers every client, until it expires."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    last_version: int
    last_position: int


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """What an idempotent command left behind: enough to answer its retry with the same response.

    A key belongs to the `client` that sent it: the same key from another client is another command.
    """

    idempotency_key: str
    fingerprint: str
    stream_id: str
    last_version: int
    last_position: int
    result: dict[str, Any]
    client: str = ANONYMOUS_CLIENT


@dataclass(frozen=True, slots=True)
class MultiAppendResult:
    last_position: int
    """The global position of the append's last event."""
    versions: dict[str, int]
    """The version each written stream is at after the append."""


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A transfer id, claimed once for the whole ledger in the transaction of its events, with
    the fingerprint of the request and its first answer (`result`, at `last_position`)."""

    transfer_id: str
    fingerprint: str
    result: dict[str, Any]
    last_position: int = 0


class TransferExists(Exception):
    """The transfer id is already taken; `record` is what the first transfer left."""

    def __init__(self, record: TransferRecord) -> None:
        super().__init__(f"transfer {record.transfer_id!r} already exists")
        self.record = record


@dataclass(frozen=True, slots=True)
class StoredPayload:
    """An event of a replay as stored: its type, its payload's JSON text and its schema version."""

    type: str
    payload_json: str
    schema_version: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream_id: str
    version: int
    state: dict[str, Any]
    schema_version: int
    taken_at: datetime


class ConcurrencyError(Exception):
    """The stream's version is not the expected one: another writer appended first."""

    def __init__(self, stream_id: str, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {current_version}, expected {expected_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.current_version = current_version


class DuplicateCommand(Exception):
    """A command with this idempotency key was already appended; `record` is what it left."""

    def __init__(self, record: CommandRecord) -> None:
        super().__init__(f"idempotency key {record.idempotency_key!r} was already used")
        self.record = record
