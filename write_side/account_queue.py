"""Commands for the same account wait for each other in this process instead of racing.

Racing for one account's next version is a livelock: every loser reloads, backs off and races
again, so a busy account does less the more clients it has. Here each account with commands waiting
has one task that drains its queue: it loads the account once (from the cache), decides the waiting
commands one after another on the state in memory, and appends everything they decided in ONE
multi-event append with one expected version; each command is answered with its own version,
position and balance. A refused command appends nothing and does not fail the others.

A group holds at most one command with an Idempotency-Key, as its last member: the store keeps one
command record per append, with the append's last version and position, which are then exactly
that command's. Across processes the expected version still arbitrates: a group that lost the race
is decided again on a fresh load, after a jittered pause, until its commands' deadlines pass. A
refusal decided on cached state stands only once the group's append proved that state current;
otherwise it is decided again on a fresh load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from kernel.events import DomainEvent
from write_side.commands import Command, OpenAccount
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    AccountExists,
    CommandTimedOut,
    LedgerError,
    StoreFailure,
    VersionConflict,
)
from write_side.handlers import HANDLERS
from write_side.repository import Accounts
from write_side.store.records import CommandRecord, ConcurrencyError, DuplicateCommand

MAX_GROUP = 256
"""Commands decided and appended together at most (group_commit.MAX_BATCH appends per call)."""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    account_id: str
    version: int
    position: int
    balance: Decimal
    replayed: bool = False
    """True when an idempotent retry was answered from the first outcome."""


async def back_off(attempt: int) -> None:
    """A jittered pause before retrying a lost version race, so racers stop colliding in step."""
    await asyncio.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.05)))


@dataclass(slots=True)
class _Waiting:
    command: Command
    record: CommandRecord | None
    deadline: float
    answer: asyncio.Future[CommandOutcome]


@dataclass(frozen=True, slots=True)
class _Decided:
    waiting: _Waiting
    events: list[DomainEvent]
    version: int
    """The account's version after this command's events."""
    balance: Decimal


class AccountQueues:
    """One per CommandBus (and so per event loop and process)."""

    def __init__(self, accounts: Accounts, deadline_s: float) -> None:
        self._accounts = accounts
        self._deadline_s = deadline_s
        self._queues: dict[str, deque[_Waiting]] = {}
        self._draining: set[asyncio.Task[None]] = set()
        """The drain tasks, held here: the event loop keeps only weak references to tasks."""

    async def execute(self, command: Command, record: CommandRecord | None) -> CommandOutcome:
        """Queue `command` behind its account's earlier ones; its outcome once decided and saved."""
        account_id = command.account_id
        assert account_id is not None
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self._deadline_s
        waiting = _Waiting(command, record, deadline, loop.create_future())
        queue = self._queues.get(account_id)
        if queue is None:
            queue = self._queues[account_id] = deque()
            drain = loop.create_task(self._drain(account_id, queue))
            self._draining.add(drain)
            drain.add_done_callback(self._draining.discard)
        queue.append(waiting)
        return await waiting.answer

    async def _drain(self, account_id: str, queue: deque[_Waiting]) -> None:
        fresh, attempt = False, 0
        try:
            while queue:
                group = _take_group(queue)
                try:
                    again, lost_race = await self._settle(group, fresh) if group else ([], False)
                except Exception as exc:  # noqa: BLE001 - handed to the waiting commands
                    _answer_all(group, exc)
                    again, lost_race = [], False
                except BaseException:
                    queue.extendleft(reversed(group))  # cancelled below, none left waiting
                    raise
                attempt = attempt + 1 if lost_race else 0
                fresh = bool(again)
                queue.extendleft(reversed(_within_deadline(again)))
                if lost_race:
                    await back_off(attempt)
        finally:
            del self._queues[account_id]
            for waiting in queue:  # only when cancelled (the loop is closing)
                waiting.answer.cancel()

    async def _settle(self, group: list[_Waiting], fresh: bool) -> tuple[list[_Waiting], bool]:
        """Decide `group` and append what it decided; answer each command whose outcome is
        settled. Returns the commands to decide again on a fresh load, and whether the append
        lost a version race to another process."""
        account_id = group[0].command.account_id
        assert account_id is not None
        loaded = await self._accounts.load(account_id, fresh=fresh)
        account, start = loaded.account, loaded.account.version
        decided: list[_Decided] = []
        refused: list[tuple[_Waiting, LedgerError]] = []
        for waiting in group:
            try:
                events = _decide(account, waiting.command)
            except LedgerError as refusal:
                refused.append((waiting, refusal))
                continue
            decided.append(_Decided(waiting, events, account.version, account.balance))
        if not decided:
            if loaded.from_cache:  # cached state may be stale: only a fresh load may refuse
                return [waiting for waiting, _ in refused], False
            _refuse(refused)
            return [], False
        try:
            result = await self._accounts.save(
                account,
                [event for d in decided for event in d.events],
                start,
                [_metadata(d.waiting) for d in decided for _ in d.events],
                _record_of(decided[-1]),
            )
        except ConcurrencyError:
            # An opening that lost its race lost for good: the account was opened meanwhile, or
            # its id was forgotten (a tombstone refuses a new key). The others go again.
            opening = [d.waiting for d in decided if isinstance(d.waiting.command, OpenAccount)]
            for waiting in opening:
                exists = AccountExists(f"account {account_id!r} already exists")
                _answer_all([waiting], exists)
            return [waiting for waiting in group if waiting not in opening], True
        except DuplicateCommand as duplicate:
            # The keyed last member was recorded by another process meanwhile: the bus answers it
            # from that record; nothing was appended, so the others are decided again.
            last = decided[-1].waiting
            _answer_all([last], duplicate)
            return [waiting for waiting in group if waiting is not last], False
        except StoreFailure as failure:  # the append may have committed: never resend it
            _answer_all([d.waiting for d in decided], failure)
            return [waiting for waiting, _ in refused], False
        _refuse(refused)  # the append proved the state they were refused on
        for d in decided:
            # One append's positions are consecutive: its events are numbered under one lock.
            position = result.last_position - (result.last_version - d.version)
            _answer(d.waiting, CommandOutcome(account_id, d.version, position, d.balance))
        return [], False


def _take_group(queue: deque[_Waiting]) -> list[_Waiting]:
    """The next commands to decide together: up to MAX_GROUP, ending at the first keyed one."""
    group: list[_Waiting] = []
    while queue and len(group) < MAX_GROUP:
        waiting = queue.popleft()
        if waiting.answer.done():  # its request was cancelled before it was decided
            continue
        group.append(waiting)
        if waiting.record is not None:
            break
    return group


def _decide(account: BankAccount, command: Command) -> list[DomainEvent]:
    """The command's events, decided on (and applied to) `account`, or a LedgerError."""
    if command.expected_version is not None and command.expected_version != account.version:
        if isinstance(command, OpenAccount) and account.version > 0:
            raise AccountExists(f"account {account.account_id!r} already exists")
        raise VersionConflict(command.expected_version, account.version)
    return HANDLERS[type(command)](account, command)


def _metadata(waiting: _Waiting) -> dict[str, str]:
    metadata = {"command": type(waiting.command).__name__, "correlation_id": uuid.uuid4().hex}
    if waiting.record is not None:
        metadata["idempotency_key"] = waiting.record.idempotency_key
    return metadata


def _record_of(last: _Decided) -> CommandRecord | None:
    """The idempotency record of the group's last command, with its outcome, if it has a key."""
    record = last.waiting.record
    if record is None:
        return None
    account_id = last.waiting.command.account_id
    assert account_id is not None
    return dataclasses.replace(record, stream_id=account_id, result={"balance": str(last.balance)})


def _within_deadline(waitings: list[_Waiting]) -> list[_Waiting]:
    now = time.monotonic()
    late = [waiting for waiting in waitings if waiting.deadline <= now]
    _answer_all(late, CommandTimedOut("the account is too busy right now; retry the command"))
    return [waiting for waiting in waitings if waiting.deadline > now]


def _refuse(refused: Iterable[tuple[_Waiting, LedgerError]]) -> None:
    for waiting, refusal in refused:
        if not waiting.answer.done():
            waiting.answer.set_exception(refusal)


def _answer_all(waitings: Iterable[_Waiting], exc: Exception) -> None:
    for waiting in waitings:
        if not waiting.answer.done():
            waiting.answer.set_exception(exc)


def _answer(waiting: _Waiting, outcome: CommandOutcome) -> None:
    if not waiting.answer.done():  # a cancelled request still had its append done
        waiting.answer.set_result(outcome)
