"""Reading the read models from Redis (never from SQL): the query API's only data access.

Every read first resolves the projection's live generation. The hot reads (a balance, a
checkpoint) do both steps in one Lua script: one round trip, and atomic, so a rebuild's switch
cannot fall between them. The other reads take two steps; a rebuild may switch the pointer and
delete the old generation in between, so a read that finds nothing checks whether the pointer
moved and, if it did, reads again from the new generation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeVar, cast

import msgspec
from redis.asyncio import Redis

from kernel.money import format_money, from_cents
from kernel.read_model_layout import (
    BALANCES,
    FIRST_GENERATION,
    META_POSITION,
    PROJECTION_NAMES,
    STATEMENTS,
    AccountBalance,
    GenerationKeys,
    GenerationMeta,
    ReadModelKeys,
    StatementEntry,
    StoredHold,
    StoredSummary,
    StoredTransfer,
    account_of_sort_member,
)
from read_side.cursors import decode_cursor, encode_cursor
from read_side.errors import AccountNotFound, HoldNotFound, TransferNotFound
from read_side.views import (
    AccountRow,
    AccountsPage,
    Balance,
    Hold,
    HoldsPage,
    ProjectionStatus,
    Statement,
    Summary,
    Transfer,
)

T = TypeVar("T")
SortKey = Literal["balance", "id"]
SortOrder = Literal["asc", "desc"]

_entry = msgspec.json.Decoder(StatementEntry)

# KEYS: the live pointer. ARGV: first generation, key text before and after the generation.
_HGETALL_IN_LIVE = """
local generation = redis.call('GET', KEYS[1]) or ARGV[1]
return redis.call('HGETALL', ARGV[2] .. generation .. ARGV[3])
"""
# The same, then ARGV[4] names the field.
_HGET_IN_LIVE = """
local generation = redis.call('GET', KEYS[1]) or ARGV[1]
return redis.call('HGET', ARGV[2] .. generation .. ARGV[3], ARGV[4])
"""


def _money(cents: str | int | None) -> str:
    return format_money(from_cents(int(cents or 0)))


def balance_view(account_id: str, stored: AccountBalance, as_of: str | None = None) -> Balance:
    return Balance(
        account_id=account_id,
        owner=stored.owner,
        currency=stored.currency,
        balance=_money(stored.balance),
        status=stored.status,
        version=stored.version,
        position=stored.position,
        overdraft_limit=_money(stored.overdraft_limit),
        available=_money(stored.available),
        held=_money(stored.held),
        as_of=as_of,
    )


def _row(account_id: str, stored: AccountBalance) -> AccountRow:
    return AccountRow(
        account_id,
        stored.owner,
        stored.currency,
        _money(stored.balance),
        stored.status,
        _money(stored.overdraft_limit),
        _money(stored.available),
        _money(stored.held),
    )


def _hold(hold_id: str, stored: StoredHold) -> Hold:
    return Hold(
        hold_id=hold_id,
        from_account=stored.from_account,
        to_account=stored.to_account,
        amount=_money(stored.amount),
        captured_amount=_money(stored.captured_amount),
        currency=stored.currency,
        reference=stored.reference,
        status=stored.status,
        expires_at=stored.expires_at,
        position=stored.position,
    )


class ScriptHost(Protocol):
    """What runs the hot reads' scripts: the redis-py client, or the query API's pipelined
    connection (read_side/pipelined_redis.py)."""

    def register_script(self, script: str) -> Callable[..., Awaitable[Any]]: ...


class ReadModelReader:
    """Queries over one Redis client (decode_responses=True); safe to share within an event loop.
    The two hot reads (a balance or other hash of the live generation, a checkpoint) run their
    script on `scripts`, the client itself unless given."""

    def __init__(self, redis: Redis, prefix: str, scripts: ScriptHost | None = None) -> None:
        self._redis = redis
        self._keys = ReadModelKeys(prefix)
        host: ScriptHost = redis if scripts is None else scripts
        self._hgetall_in_live = host.register_script(_HGETALL_IN_LIVE)
        self._hget_in_live = host.register_script(_HGET_IN_LIVE)

    async def _live_hash(
        self, projection: str, key_of: Callable[[GenerationKeys], str]
    ) -> dict[str, str]:
        """HGETALL of `key_of(live generation of projection)`, in one round trip."""
        before, after = self._keys.around_generation(projection, key_of)
        keys = [self._keys.live(projection)]
        flat = await self._hgetall_in_live(keys=keys, args=[FIRST_GENERATION, before, after])
        return dict(zip(flat[::2], flat[1::2], strict=True))

    async def _hash(self, key: str) -> dict[str, str]:
        # The client decodes responses, so redis-py's bytes-or-str result is str here.
        return cast(dict[str, str], await self._redis.hgetall(key))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def live_generation(self, projection: str) -> int:
        return int(await self._redis.get(self._keys.live(projection)) or FIRST_GENERATION)

    async def checkpoint(self, projection: str) -> int:
        before, after = self._keys.around_generation(projection, lambda keys: keys.meta)
        keys = [self._keys.live(projection)]
        position = await self._hget_in_live(
            keys=keys, args=[FIRST_GENERATION, before, after, META_POSITION]
        )
        return int(position or 0)

    async def _in_live(
        self, projection: str, read: Callable[[int], Awaitable[T | None]]
    ) -> T | None:
        generation = await self.live_generation(projection)
        result = await read(generation)
        if result is None and (moved := await self.live_generation(projection)) != generation:
            result = await read(moved)
        return result

    async def balance(self, account_id: str) -> Balance:
        fields = await self._live_hash(BALANCES, lambda keys: keys.account(account_id))
        stored = AccountBalance.from_hash(fields)
        if stored is None:
            raise AccountNotFound(account_id)
        return balance_view(account_id, stored)

    async def transfer(self, transfer_id: str) -> Transfer:
        fields = await self._live_hash(BALANCES, lambda keys: keys.transfer(transfer_id))
        stored = StoredTransfer.from_hash(fields)
        if stored is None:
            raise TransferNotFound(transfer_id)
        return Transfer(
            transfer_id=transfer_id,
            from_account=stored.from_account,
            to_account=stored.to_account,
            amount=_money(stored.amount),
            currency=stored.currency,
            reference=stored.reference,
            status=stored.status,
            position=stored.position,
            recorded_at=stored.recorded_at,
            reversal_of=stored.reversal_of,
            reversed_by=stored.reversed_by,
        )

    async def hold(self, hold_id: str) -> Hold:
        fields = await self._live_hash(BALANCES, lambda keys: keys.hold(hold_id))
        stored = StoredHold.from_hash(fields)
        if stored is None:
            raise HoldNotFound(hold_id)
        return _hold(hold_id, stored)

    async def holds_of(
        self, account_id: str, status: str | None, limit: int, before_position: int | None
    ) -> HoldsPage:
        """The holds `account_id` takes part in, newest first; `status` filters them ("pending"
        reads its own index; the others filter the account's holds as they are read)."""

        async def read(generation: int) -> HoldsPage | None:
            keys = self._keys.generation(BALANCES, generation)
            if not await self._redis.exists(keys.account(account_id)):
                return None
            index = keys.pending_holds_of(account_id) if status == "pending" else None
            return await self._holds_page(keys, account_id, index, status, limit, before_position)

        found = await self._in_live(BALANCES, read)
        if found is None:
            raise AccountNotFound(account_id)
        return found

    async def _holds_page(
        self,
        keys: GenerationKeys,
        account_id: str,
        index: str | None,
        status: str | None,
        limit: int,
        before: int | None,
    ) -> HoldsPage:
        newest = "+inf" if before is None else f"({before}"
        index = index or keys.holds_of(account_id)
        chosen: list[tuple[int, Hold]] = []
        while True:  # pages of the index until `limit` + 1 holds of the status are found
            found = await self._redis.zrevrangebyscore(
                index, newest, "-inf", start=0, num=limit + 1, withscores=True
            )
            rows = [
                (hold_id, int(score)) for hold_id, score in cast(list[tuple[str, float]], found)
            ]
            async with self._redis.pipeline(transaction=False) as pipe:
                for hold_id, _ in rows:
                    pipe.hgetall(keys.hold(hold_id))
                hashes: list[dict[str, str]] = await pipe.execute()
            for (hold_id, score), fields in zip(rows, hashes, strict=True):
                stored = StoredHold.from_hash(fields)
                if stored is not None and (status is None or stored.status == status):
                    chosen.append((score, _hold(hold_id, stored)))
            if len(chosen) > limit or len(rows) <= limit:
                break
            newest = f"({rows[-1][1]}"
        more = len(chosen) > limit
        page = chosen[:limit]
        return HoldsPage(account_id, [hold for _, hold in page], page[-1][0] if more else None)

    async def statement(self, account_id: str, limit: int, before_version: int | None) -> Statement:
        async def read(generation: int) -> Statement | None:
            keys = self._keys.generation(STATEMENTS, generation)
            newest = "+inf" if before_version is None else f"({before_version}"
            async with self._redis.pipeline(transaction=True) as tx:  # one consistent snapshot
                tx.exists(keys.running(account_id))
                tx.zrevrangebyscore(
                    keys.statement(account_id), newest, "-inf", start=0, num=limit + 1
                )
                exists, members = await tx.execute()
            if not exists:
                return None
            entries = [_entry.decode(member) for member in members[:limit]]
            more = len(members) > limit
            return Statement(account_id, entries, entries[-1].version if more else None)

        found = await self._in_live(STATEMENTS, read)
        if found is None:
            raise AccountNotFound(account_id)
        return found

    async def accounts(
        self, sort: SortKey, order: SortOrder, limit: int, cursor: str | None
    ) -> AccountsPage:
        after = decode_cursor(cursor, sort, order) if cursor is not None else None
        generation = await self.live_generation(BALANCES)
        keys = self._keys.generation(BALANCES, generation)
        index = keys.by_balance if sort == "balance" else keys.by_id
        if order == "asc":
            bound = "-" if after is None else f"({after}"
            found = await self._redis.zrangebylex(index, bound, "+", start=0, num=limit + 1)
        else:
            bound = "+" if after is None else f"({after}"
            found = await self._redis.zrevrangebylex(index, bound, "-", start=0, num=limit + 1)
        members = cast(list[str], found)
        page = members[:limit]
        ids = [account_of_sort_member(m) if sort == "balance" else m for m in page]
        async with self._redis.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.hgetall(keys.account(account_id))
            rows: list[dict[str, str]] = await pipe.execute()
        accounts = [
            _row(aid, stored)
            for aid, row in zip(ids, rows, strict=True)
            # a row is gone only if a rebuild deleted this generation mid-request
            if (stored := AccountBalance.from_hash(row))
        ]
        more = len(members) > limit
        return AccountsPage(accounts, encode_cursor(sort, order, page[-1]) if more else None)

    async def summary(self) -> Summary:
        async def read(generation: int) -> dict[str, str] | None:
            fields = await self._hash(self._keys.generation(BALANCES, generation).summary)
            return fields or None

        stored = StoredSummary.from_hash(await self._in_live(BALANCES, read) or {})
        return Summary(
            accounts=stored.accounts,
            open_accounts=stored.open_accounts,
            balances_by_currency={c: _money(cents) for c, cents in stored.balances.items()},
            events_projected=stored.events,
        )

    async def worker_metrics(self) -> dict[str, str]:
        """The workers' counters and histogram buckets (`projectors/metrics.py`)."""
        return await self._hash(self._keys.worker_metrics)

    async def projections(self, store_head: int | None = None) -> list[ProjectionStatus]:
        """Where each projection stands. The head is the one announced to Redis unless the caller
        read the store's own (`bank projections status` does)."""
        announced = (
            store_head
            if store_head is not None
            else int(await self._redis.get(self._keys.head) or 0)
        )
        statuses = []
        for name in PROJECTION_NAMES:
            generation = await self.live_generation(name)
            meta = GenerationMeta.from_hash(
                await self._hash(self._keys.generation(name, generation).meta)
            )
            checkpoint = meta.position
            head = max(announced, checkpoint)
            statuses.append(
                ProjectionStatus(
                    name=name,
                    generation=generation,
                    checkpoint=checkpoint,
                    head=head,
                    lag=head - checkpoint,
                    last_advanced_at=meta.advanced_at,
                )
            )
        return statuses
