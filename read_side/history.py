"""Reading the past from the read models' time indexes (never from SQL): an account's balance as
of an instant, and its statement entries recorded in a time range.

Each read is one Lua script that resolves the live generation and reads everything it needs in
one atomic step, so a rebuild's switch cannot fall between its parts. Each finds its place in
time with one range query on a sorted set scored by recorded time (`projectors/history.py`):
O(log n) in the account's history, then O(1) per entry returned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec
from redis.asyncio import Redis

from kernel.read_model_layout import (
    BALANCES,
    FIRST_GENERATION,
    STATEMENTS,
    AccountBalance,
    GenerationKeys,
    ReadModelKeys,
    StatementEntry,
    epoch_micros,
    state_from_history,
)
from read_side.errors import AccountNotFound
from read_side.instants import utc_text
from read_side.readers import balance_view
from read_side.views import Balance, Statement

_entry = msgspec.json.Decoder(StatementEntry)

# KEYS: the live pointer. ARGV: first generation, key text before the generation, the account
# hash's and the history set's text after it, the instant (epoch microseconds).
_BALANCE_AS_OF = """
local base = ARGV[2] .. (redis.call('GET', KEYS[1]) or ARGV[1])
local account = redis.call('HGETALL', base .. ARGV[3])
local state = redis.call('ZREVRANGEBYSCORE', base .. ARGV[4], ARGV[5], '-inf',
                         'WITHSCORES', 'LIMIT', 0, 1)
return {account, state}
"""

# KEYS: the live pointer. ARGV: first generation, key text before the generation, the running
# hash's, time index's and statement's text after it; from and to (epoch microseconds, '' when
# open), the newest version wanted ('' for any), how many entries. Nil when the account is unknown.
_STATEMENT_BETWEEN = """
local base = ARGV[2] .. (redis.call('GET', KEYS[1]) or ARGV[1])
if redis.call('EXISTS', base .. ARGV[3]) == 0 then return false end
local times = base .. ARGV[4]
local newest = tonumber(ARGV[8])
if ARGV[7] ~= '' then
    local last = redis.call('ZREVRANGEBYSCORE', times, ARGV[7], '-inf', 'LIMIT', 0, 1)
    if #last == 0 then return {} end
    local version = tonumber(last[1])
    if newest == nil or version < newest then newest = version end
end
local oldest = '-inf'
if ARGV[6] ~= '' then
    local first = redis.call('ZRANGEBYSCORE', times, ARGV[6], '+inf', 'LIMIT', 0, 1)
    if #first == 0 then return {} end
    oldest = tonumber(first[1])
end
return redis.call('ZREVRANGEBYSCORE', base .. ARGV[5], newest or '+inf', oldest,
                  'LIMIT', 0, tonumber(ARGV[9]))
"""


class HistoryReader:
    """Queries about the past over one Redis client (decode_responses=True)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._keys = ReadModelKeys(prefix)
        self._balance_as_of = redis.register_script(_BALANCE_AS_OF)
        self._statement_between = redis.register_script(_STATEMENT_BETWEEN)

    def _around(self, projection: str, *key_of: Callable[[GenerationKeys], str]) -> list[str]:
        """The key text before the generation, then each key's text after it."""
        texts: list[str] = []
        for one in key_of:
            before, after = self._keys.around_generation(projection, one)
            texts = texts or [before]
            texts.append(after)
        return texts

    async def balance_as_of(self, account_id: str, as_of: datetime) -> Balance:
        """The balance after the account's last event recorded at or before `as_of`."""
        texts = self._around(
            BALANCES, lambda keys: keys.account(account_id), lambda keys: keys.history(account_id)
        )
        flat, found = await self._balance_as_of(
            keys=[self._keys.live(BALANCES)],
            args=[FIRST_GENERATION, *texts, epoch_micros(as_of)],
        )
        now = AccountBalance.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        if now is None or not found:
            raise AccountNotFound(account_id)
        member, score = found
        then = state_from_history(now, member, int(float(score)))
        return balance_view(account_id, then, as_of=utc_text(as_of))

    async def statement_between(
        self,
        account_id: str,
        limit: int,
        before_version: int | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Statement:
        """Entries recorded at or after `since` and at or before `until`, newest first."""
        texts = self._around(
            STATEMENTS,
            lambda keys: keys.running(account_id),
            lambda keys: keys.statement_times(account_id),
            lambda keys: keys.statement(account_id),
        )
        found = await self._statement_between(
            keys=[self._keys.live(STATEMENTS)],
            args=[
                FIRST_GENERATION,
                *texts,
                "" if since is None else epoch_micros(since),
                "" if until is None else epoch_micros(until),
                "" if before_version is None else before_version - 1,
                limit + 1,
            ],
        )
        if found is None:
            raise AccountNotFound(account_id)
        entries = [_entry.decode(member) for member in found[:limit]]
        more = len(found) > limit
        return Statement(account_id, entries, entries[-1].version if more else None)
