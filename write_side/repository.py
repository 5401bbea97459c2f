"""Loading and saving BankAccounts: the latest snapshot plus the events after it, then an append.

Snapshots are an optimisation only: a snapshot of an older schema is ignored and the account is
rebuilt from its events; a failed snapshot write loses nothing (the events are already committed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import msgspec
import sqlalchemy.exc

from kernel.events import DomainEvent, NewEvent, event_from_json
from kernel.personal_data import Personal
from write_side.domain.account import SNAPSHOT_SCHEMA_VERSION, SNAPSHOT_UPCASTERS, BankAccount
from write_side.personal_data import PersonalData, SealedRecords
from write_side.store.event_store import EventStore
from write_side.store.records import (
    AppendResult,
    CommandRecord,
    MultiAppendResult,
    Snapshot,
    TransferRecord,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedAccount:
    account: BankAccount
    events_replayed: int
    """How many events were applied on top of the snapshot (at most SNAPSHOT_EVERY - 1 + races)."""
    from_cache: bool = False
    """Loaded from memory (account_cache.py): may be stale, so refusals must be confirmed."""


class Accounts(Protocol):
    """Where commands load and save accounts: AccountRepository or CachedAccounts."""

    async def load(self, account_id: str, *, fresh: bool = ...) -> LoadedAccount: ...

    async def save(
        self,
        account: BankAccount,
        new_events: Sequence[DomainEvent],
        expected_version: int,
        metadata: dict[str, str] | Sequence[dict[str, str]],
        command: CommandRecord | None = None,
    ) -> AppendResult: ...

    async def find_command(self, client: str, idempotency_key: str) -> CommandRecord | None: ...


class AccountRepository:
    def __init__(
        self, store: EventStore, snapshot_every: int, personal_data: PersonalData | None = None
    ) -> None:
        self._store = store
        self._snapshot_every = snapshot_every
        self._personal_data = personal_data
        """Seals personal fields before the append; None keeps them in clear (no key table)."""

    async def load(self, account_id: str, *, fresh: bool = True) -> LoadedAccount:
        """Always from the store (`fresh` is for the caching repository's interface)."""
        readable = (SNAPSHOT_UPCASTERS.oldest_readable, SNAPSHOT_SCHEMA_VERSION)
        snapshot, tail = await self._store.load_for_replay(account_id, readable)
        if snapshot is not None:
            account = BankAccount.from_snapshot(
                account_id, snapshot.version, snapshot.state, snapshot.schema_version
            )
        else:
            account = BankAccount(account_id)
        for stored in tail:
            account.apply(event_from_json(stored.type, stored.payload_json, stored.schema_version))
        return LoadedAccount(account, len(tail))

    async def save(
        self,
        account: BankAccount,
        new_events: Sequence[DomainEvent],
        expected_version: int,
        metadata: dict[str, str] | Sequence[dict[str, str]],
        command: CommandRecord | None = None,
    ) -> AppendResult:
        """Append the events the account just decided; snapshot when a multiple of N is crossed.

        `metadata` is every event's, or one per event (a combined group holds several commands)."""
        stream = account.account_id
        each = [metadata] * len(new_events) if isinstance(metadata, dict) else metadata
        sealed = self._sealed(
            {stream: account},
            [(stream, NewEvent.from_domain(e, m)) for e, m in zip(new_events, each, strict=True)],
        )
        result = await self._store.append(
            stream,
            [event for _, event in sealed.records],
            expected_version,
            command,
            new_keys=sealed.new_keys,
        )
        if result.last_version // self._snapshot_every > expected_version // self._snapshot_every:
            await self._snapshot(account, result.last_version)
        return result

    async def save_many(
        self,
        accounts: Mapping[str, BankAccount],
        new_events: Sequence[tuple[str, DomainEvent]],
        expected_versions: Mapping[str, int],
        metadata: dict[str, str],
        command: CommandRecord | None = None,
        transfers: Sequence[TransferRecord] = (),
    ) -> MultiAppendResult:
        """Append what several accounts decided in one store transaction (EventStore.append_many);
        snapshot each account that crossed a multiple of N."""
        sealed = self._sealed(
            accounts, [(stream, NewEvent.from_domain(e, metadata)) for stream, e in new_events]
        )
        result = await self._store.append_many(
            sealed.records, expected_versions, command, transfers, new_keys=sealed.new_keys
        )
        for account_id, version in result.versions.items():
            if (
                version // self._snapshot_every
                > expected_versions[account_id] // self._snapshot_every
            ):
                await self._snapshot(accounts[account_id], version)
        return result

    def _sealed(
        self, accounts: Mapping[str, BankAccount], records: list[tuple[str, NewEvent]]
    ) -> SealedRecords:
        """The records with personal fields sealed, and the new keys the append stores; the
        accounts keep the sealed owner, so a later snapshot of them never holds a name in clear."""
        if self._personal_data is None:
            return SealedRecords(records)
        sealed = self._personal_data.seal(records)
        for stream, event in sealed.records:
            if event.type == "AccountOpened" and stream in accounts:
                accounts[stream].owner = msgspec.convert(event.payload["owner"], Personal)
        return sealed

    async def _snapshot(self, account: BankAccount, version: int) -> None:
        snapshot = Snapshot(
            stream_id=account.account_id,
            version=version,
            state=account.snapshot_state(),
            schema_version=SNAPSHOT_SCHEMA_VERSION,
            taken_at=datetime.now(UTC),
        )
        try:
            await self._store.save_snapshot(snapshot)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            log.warning(
                "snapshot of %s at version %d not saved: %s", account.account_id, version, exc
            )

    async def find_command(self, client: str, idempotency_key: str) -> CommandRecord | None:
        return await self._store.find_command(client, idempotency_key)

    async def find_transfer(self, transfer_id: str) -> TransferRecord | None:
        return await self._store.find_transfer(transfer_id)
