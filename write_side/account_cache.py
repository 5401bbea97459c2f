"""Recently used accounts kept in memory, so that a command on a busy account costs one round trip
(the append) instead of two (load, then append).

Safe because the store decides: an append carries the version the decision was based on, so a
stale cached account (another process appended meanwhile) makes the append conflict, the entry is
dropped and the command is retried on fresh state. A refusal decided on cached state is never
trusted either: the command bus confirms it on fresh state (`fresh=True`).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from kernel.events import DomainEvent
from write_side.domain.account import BankAccount
from write_side.repository import AccountRepository, LoadedAccount
from write_side.store.records import (
    AppendResult,
    CommandRecord,
    MultiAppendResult,
    TransferRecord,
)

DEFAULT_MAX_ACCOUNTS = 10_000


class CachedAccounts:
    """The AccountRepository's interface, with a bounded LRU of accounts this process saved."""

    def __init__(
        self, repository: AccountRepository, max_accounts: int = DEFAULT_MAX_ACCOUNTS
    ) -> None:
        self._repository = repository
        self._max_accounts = max_accounts
        self._accounts: OrderedDict[str, BankAccount] = OrderedDict()

    async def load(self, account_id: str, *, fresh: bool = False) -> LoadedAccount:
        cached = None if fresh else self._accounts.get(account_id)
        if cached is None:
            self._accounts.pop(account_id, None)
            return await self._repository.load(account_id)
        self._accounts.move_to_end(account_id)
        # A copy: deciding mutates the account, and the decision may still be refused.
        return LoadedAccount(dataclasses.replace(cached), 0, from_cache=True)

    async def save(
        self,
        account: BankAccount,
        new_events: Sequence[DomainEvent],
        expected_version: int,
        metadata: dict[str, str] | Sequence[dict[str, str]],
        command: CommandRecord | None = None,
    ) -> AppendResult:
        try:
            result = await self._repository.save(
                account, new_events, expected_version, metadata, command
            )
        except BaseException:
            self._accounts.pop(account.account_id, None)
            raise
        if account.version == result.last_version:
            self._remember(account)
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
        try:
            result = await self._repository.save_many(
                accounts, new_events, expected_versions, metadata, command, transfers
            )
        except BaseException:
            for account_id in expected_versions:
                self._accounts.pop(account_id, None)
            raise
        for account_id, version in result.versions.items():
            if accounts[account_id].version == version:
                self._remember(accounts[account_id])
        return result

    def _remember(self, account: BankAccount) -> None:
        self._accounts[account.account_id] = dataclasses.replace(account)
        self._accounts.move_to_end(account.account_id)
        while len(self._accounts) > self._max_accounts:
            self._accounts.popitem(last=False)

    async def find_command(self, client: str, idempotency_key: str) -> CommandRecord | None:
        return await self._repository.find_command(client, idempotency_key)

    async def find_transfer(self, transfer_id: str) -> TransferRecord | None:
        return await self._repository.find_transfer(transfer_id)
