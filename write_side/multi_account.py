"""What transfers and atomic batches share: commands that decide on several accounts at once and
append all their events in one store transaction (`EventStore.append_many`).

The pieces are the command bus's, applied to many accounts: accounts are loaded through the same
repository (cached first, fresh after a lost race or to confirm a refusal), a lost version race is
retried until the bus's deadline, and an `Idempotency-Key` answers a retry from the stored outcome.
No database lock is held while deciding: the store's append lock serialises the appends and the
expected versions catch a decision made on stale state. Inside one process, transfers on the same
account wait for each other (`AccountLocks`, taken in sorted order, so they cannot deadlock)
instead of losing version races to each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kernel.events import DomainEvent
from write_side.account_queue import back_off
from write_side.command_bus import CommandBus
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    CommandTimedOut,
    IdempotencyKeyReused,
    LedgerError,
    StoreFailure,
)
from write_side.repository import Accounts, LoadedAccount
from write_side.store.records import (
    CommandRecord,
    ConcurrencyError,
    DuplicateCommand,
    MultiAppendResult,
    TransferExists,
    TransferRecord,
)

T = TypeVar("T")


class LedgerAccounts(Accounts, Protocol):
    """The bus's repository, plus appends over several accounts and the ledger's transfer ids."""

    async def save_many(
        self,
        accounts: Mapping[str, BankAccount],
        new_events: Sequence[tuple[str, DomainEvent]],
        expected_versions: Mapping[str, int],
        metadata: dict[str, str],
        command: CommandRecord | None = None,
        transfers: Sequence[TransferRecord] = (),
    ) -> MultiAppendResult: ...

    async def find_transfer(self, transfer_id: str) -> TransferRecord | None: ...


@dataclass(frozen=True, slots=True)
class MultiOutcome:
    position: int
    """The position of the append's last event: the read-your-writes token of every part."""
    result: dict[str, Any]
    """The answer without `position`, as stored for retries."""
    replayed: bool = False


@dataclass(slots=True)
class Workspace:
    """The accounts one attempt decides on, held in memory, and the events decided so far."""

    repository: LedgerAccounts
    fresh: bool
    loaded: dict[str, LoadedAccount] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    events: list[tuple[str, DomainEvent]] = field(default_factory=list)

    async def account(self, account_id: str) -> BankAccount:
        if account_id not in self.loaded:
            loaded = await self.repository.load(account_id, fresh=self.fresh)
            self.loaded[account_id] = loaded
            self.expected[account_id] = loaded.account.version
        return self.loaded[account_id].account

    def record(self, account_id: str, events: Sequence[DomainEvent]) -> None:
        self.events.extend((account_id, event) for event in events)

    @property
    def used_cache(self) -> bool:
        return any(loaded.from_cache for loaded in self.loaded.values())

    async def save(
        self,
        name: str,
        record: CommandRecord | None,
        transfers: Sequence[TransferRecord] = (),
        extra_metadata: Mapping[str, str] | None = None,
    ) -> MultiAppendResult:
        written = {stream for stream, _ in self.events}
        metadata = {"command": name, "correlation_id": uuid.uuid4().hex, **(extra_metadata or {})}
        if record is not None:
            metadata["idempotency_key"] = record.idempotency_key
        accounts = {account_id: self.loaded[account_id].account for account_id in written}
        expected = {account_id: self.expected[account_id] for account_id in written}
        return await self.repository.save_many(
            accounts, self.events, expected, metadata, record, transfers
        )


@dataclass(slots=True)
class _Held:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class AccountLocks:
    """Commands of this process over several accounts wait for each other, account by account,
    instead of racing for the same versions: a lost race costs fresh loads, a pause and another
    append. Locks are taken in sorted order, so two commands never wait for each other. Across
    processes the expected versions still arbitrate."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    @asynccontextmanager
    async def holding(self, account_ids: Iterable[str], wait_s: float) -> AsyncIterator[None]:
        """Hold every one of `account_ids`; waiting longer than `wait_s` is CommandTimedOut."""
        entered: list[tuple[str, _Held]] = []
        acquired: list[_Held] = []
        try:
            try:
                async with asyncio.timeout(wait_s):
                    for account_id in sorted(set(account_ids)):
                        held = self._held.setdefault(account_id, _Held())
                        held.users += 1
                        entered.append((account_id, held))
                        await held.lock.acquire()
                        acquired.append(held)
            except TimeoutError:
                raise CommandTimedOut(
                    "the accounts are too busy right now; retry the command"
                ) from None
            yield
        finally:
            for held in acquired:
                held.lock.release()
            for account_id, held in entered:
                held.users -= 1
                if held.users == 0:
                    del self._held[account_id]


async def decide_confirmed(
    repository: LedgerAccounts, fresh: bool, decide: Callable[[Workspace], Awaitable[T]]
) -> tuple[Workspace, T]:
    """`decide` on a new workspace; a refusal made on cached accounts is confirmed on fresh ones."""
    workspace = Workspace(repository, fresh)
    try:
        return workspace, await decide(workspace)
    except StoreFailure:
        raise
    except LedgerError:
        if fresh or not workspace.used_cache:
            raise
    workspace = Workspace(repository, fresh=True)
    return workspace, await decide(workspace)


async def with_retries(deadline_s: float, attempt: Callable[[bool], Awaitable[T]]) -> T:
    """`attempt(fresh)` until it does not lose a version race; only the first may use the cache."""
    deadline = time.monotonic() + deadline_s
    attempts = 0
    while True:
        try:
            return await attempt(attempts > 0)
        except ConcurrencyError:
            pass
        attempts += 1
        if time.monotonic() >= deadline:
            raise CommandTimedOut("the accounts are too busy right now; retry the command")
        await back_off(attempts)


async def once_per_claim(
    repository: LedgerAccounts,
    deadline_s: float,
    claim_id: str,
    replay: Callable[[TransferRecord], MultiOutcome],
    attempt: Callable[[bool], Awaitable[MultiOutcome]],
    *,
    generated: bool = False,
) -> MultiOutcome:
    """A command whose id (`claim_id`: a transfer, hold or reversal id) is claimed in the
    transaction of its events: answered through `replay` from the claim when it exists, else
    `attempt(fresh)` until it does not lose a version race. A racing request that claimed the id
    first, or whose appended state makes this one refused, is answered through `replay` too.

    An id `generated` for this request (a fresh UUID) cannot have been claimed before: it is not
    looked up (a round trip per command); its append still claims it."""
    earlier = None if generated else await repository.find_transfer(claim_id)
    if earlier is not None:
        return replay(earlier)
    try:
        return await with_retries(deadline_s, attempt)
    except TransferExists as taken:  # a racing request with this id appended first
        return replay(taken.record)
    except StoreFailure:
        raise
    except LedgerError:
        # Refused on the state a racing first attempt left behind: answer with its outcome.
        earlier = await repository.find_transfer(claim_id)
        if earlier is None:
            raise
        return replay(earlier)


async def once_per_key(
    bus: CommandBus,
    repository: LedgerAccounts,
    key: str | None,
    client: str,
    fingerprint: str,
    run: Callable[[CommandRecord | None], Awaitable[MultiOutcome]],
) -> MultiOutcome:
    """`run(record)`, or with an Idempotency-Key, the first outcome of this (client, key)."""
    if key is None:
        return await run(None)
    async with bus.key_slot(client, key):
        record = CommandRecord(key, fingerprint, "", 0, 0, {}, client)
        earlier = await repository.find_command(client, key)
        if earlier is not None:
            return _replay(record, earlier)
        try:
            return await run(record)
        except DuplicateCommand as duplicate:  # the same key won a race with us
            return _replay(record, duplicate.record)
        except StoreFailure:
            raise
        except LedgerError:
            # Refused on the state a racing first attempt left behind: answer with its outcome.
            earlier = await repository.find_command(client, key)
            if earlier is None:
                raise
            return _replay(record, earlier)


def keyed(
    record: CommandRecord | None, stream_id: str, result: dict[str, Any]
) -> CommandRecord | None:
    """The idempotency record to append with an outcome, if the command came with a key."""
    if record is None:
        return None
    return dataclasses.replace(record, stream_id=stream_id, result=result)


def _replay(record: CommandRecord, earlier: CommandRecord) -> MultiOutcome:
    if earlier.fingerprint != record.fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was already used for a different request")
    return MultiOutcome(earlier.last_position, earlier.result, replayed=True)
