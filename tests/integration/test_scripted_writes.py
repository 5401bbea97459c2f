"""A rebuild batch's writes replayed by one script (projectors/scripted.py) leave Redis exactly as
the same calls queued on a redis-py transaction do, against a real Redis."""

from __future__ import annotations

import asyncio

import msgspec
import redis
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from projectors.scripted import MAX_PAIRS, ScriptedWrites

pytest_plugins = ["tests.fixtures"]  # rdb


def _calls(tx: Pipeline | ScriptedWrites, base: str) -> None:
    """Every kind of call the folds make, with the awkward values: large integer scores (epoch
    microseconds), float scores, bytes members, text beyond ASCII, JSON with quotes, and more
    members than one script call unpacks."""
    many = {f'{n:020d}:[{n},0,{n},"open",0]': 1_769_851_800_123_457 + n for n in range(4500)}
    tx.zadd(f"{base}:history:{{a}}", many)
    tx.zrem(f"{base}:history:{{a}}", *list(many)[: MAX_PAIRS + 7])
    tx.zadd(f"{base}:holds_due", {"h1": 1_769_851_800.123456, "h2": 0.1})
    entry = msgspec.json.encode({"amount": "-5.00", "reference": 'rent "May" ü'})
    tx.zadd(f"{base}:statement:{{a}}", {entry: 7})
    tx.hset(f"{base}:account:{{a}}", mapping={"owner": "Zoë Ødegård", "balance": -1250, "v": 3})
    tx.hset(f"{base}:account:{{a}}", mapping={"balance": 99})
    tx.hincrby(f"{base}:summary", "balance:EUR", -1250)
    tx.hincrby(f"{base}:summary", "balance:EUR", 5)


def _contents(client: redis.Redis, base: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for key in sorted(client.scan_iter(match=f"{base}:*")):
        kind = client.type(key)
        suffix = key.removeprefix(base)
        if kind == "zset":
            found[suffix] = client.zrange(key, 0, -1, withscores=True)
        else:
            found[suffix] = client.hgetall(key)
    return found


def test_a_scripted_batch_leaves_the_same_keys_as_the_same_commands_in_a_transaction(
    redis_url: str, redis_prefix: str, rdb: redis.Redis
) -> None:
    async def write() -> None:
        client = Redis.from_url(redis_url)
        try:
            async with client.pipeline(transaction=True) as tx:
                _calls(tx, f"{redis_prefix}:plain")
                scripted = ScriptedWrites()
                _calls(scripted, f"{redis_prefix}:scripted")
                scripted.queue_on(tx)
                await tx.execute()
        finally:
            await client.aclose()

    asyncio.run(write())

    plain = _contents(rdb, f"{redis_prefix}:plain")
    history = plain[":history:{a}"]
    assert isinstance(history, list)
    assert (len(plain), len(history)) == (5, 4500 - MAX_PAIRS - 7)
    assert _contents(rdb, f"{redis_prefix}:scripted") == plain
