"""Command handling: load (snapshot + tail) → decide → append with the expected version.

Commands for one account queue up in this process and are decided one after another, then
appended together (account_queue.py). A command without `expected_version` only raced another
process when its append conflicts, so it is decided again on the fresh state until it succeeds, a
business rule refuses it, or its deadline passes.
A command with `expected_version` states what the client saw: any other version is a conflict.
An `Idempotency-Key` makes a retried command answer with its first outcome and append nothing. A key
belongs to the client that sent it (the API key's id): the same key from two clients is two commands.
While a command with a key runs, a second one with the same (client, key) in this process waits for
it, or after the deadline gets IdempotencyKeyInFlight; across processes the store's unique
(client, key) lets only one append and the other replays its outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import msgspec

from kernel.money import ZERO
from write_side.account_queue import AccountQueues
from write_side.account_queue import CommandOutcome as CommandOutcome
from write_side.commands import (
    Batch,
    Command,
    HoldCommand,
    OpenAccount,
    ReverseTransfer,
    Transfer,
)
from write_side.domain.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    LedgerError,
    StoreFailure,
)
from write_side.publisher import EventPublisher
from write_side.repository import Accounts
from write_side.store.records import ANONYMOUS_CLIENT, CommandRecord, DuplicateCommand


def fingerprint(command: Command | Transfer | ReverseTransfer | Batch | HoldCommand) -> str:
    """A digest of what the client asked for, to tell a true retry from a reused key."""
    if isinstance(command, Batch):
        body = {"command": "Batch", "commands": [fingerprint(c) for c in command.commands]}
    else:
        body = {"command": type(command).__name__, **dataclasses.asdict(command)}
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


class CommandBus:
    def __init__(self, repository: Accounts, publisher: EventPublisher, deadline_s: float) -> None:
        self._repository = repository
        self._publisher = publisher
        self._deadline_s = deadline_s
        self._in_flight: dict[tuple[str, str], asyncio.Event] = {}
        """(client, key) of the keyed commands running in this process; set when each ends."""
        self._queues = AccountQueues(repository, deadline_s)

    @property
    def deadline_s(self) -> float:
        return self._deadline_s

    @asynccontextmanager
    async def key_slot(self, client: str, idempotency_key: str) -> AsyncIterator[None]:
        """Run the body as the only command with this (client, key) in this process."""
        slot = (client, idempotency_key)
        await self._wait_for_earlier(slot)
        finished = self._in_flight[slot] = asyncio.Event()
        try:
            yield
        finally:
            del self._in_flight[slot]
            finished.set()

    async def execute(
        self,
        command: Command,
        idempotency_key: str | None = None,
        *,
        client: str = ANONYMOUS_CLIENT,
    ) -> CommandOutcome:
        """Run `command`; with `idempotency_key`, once per (client, key) within the retention."""
        if idempotency_key is None:
            return await self._execute_new(command, None)
        async with self.key_slot(client, idempotency_key):
            record = CommandRecord(idempotency_key, fingerprint(command), "", 0, 0, {}, client)
            earlier = await self._repository.find_command(client, idempotency_key)
            if earlier is not None:
                return self._replay(record, earlier)
            return await self._execute_new(command, record)

    async def _wait_for_earlier(self, slot: tuple[str, str]) -> None:
        """Until no command with this (client, key) runs here; another may start as one ends."""
        try:
            async with asyncio.timeout(self._deadline_s):
                while (running := self._in_flight.get(slot)) is not None:
                    await running.wait()
        except TimeoutError:
            raise IdempotencyKeyInFlight(
                "a request with this Idempotency-Key is still being processed; retry shortly"
            ) from None

    async def _execute_new(self, command: Command, record: CommandRecord | None) -> CommandOutcome:
        if isinstance(command, OpenAccount) and command.account_id is None:
            command = dataclasses.replace(command, account_id=uuid.uuid4().hex)
        try:
            outcome = await self._queues.execute(command, record)
        except DuplicateCommand as duplicate:  # the same key won a race with us
            assert record is not None
            return self._replay(record, duplicate.record)
        except StoreFailure:
            raise  # not a decision: there is no earlier outcome to answer with
        except LedgerError:
            # A retry racing its first attempt can decide on the state that attempt left behind
            # (balance spent, account closed, version moved on): answer with the first outcome.
            earlier = await self._find_earlier(record)
            if earlier is None:
                raise
            assert record is not None
            return self._replay(record, earlier)
        await self._publisher.events_committed(outcome.account_id, outcome.position)
        return outcome

    async def _find_earlier(self, record: CommandRecord | None) -> CommandRecord | None:
        if record is None:
            return None
        return await self._repository.find_command(record.client, record.idempotency_key)

    @staticmethod
    def _replay(record: CommandRecord, earlier: CommandRecord) -> CommandOutcome:
        if earlier.fingerprint != record.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request"
            )
        balance = Decimal(str(earlier.result.get("balance", ZERO)))
        return CommandOutcome(
            earlier.stream_id, earlier.last_version, earlier.last_position, balance, replayed=True
        )
