"""Requests waiting for `min_position` are woken by the workers' checkpoint announcements, and share
one checkpoint poller per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kernel.read_model_layout import BALANCES, ReadModelKeys, checkpoint_message
from read_side.errors import ProjectionBehind
from read_side.freshness import CheckpointWatcher
from read_side.readers import ReadModelReader


class CountingReader(ReadModelReader):
    """The real reader, counting how often a checkpoint is read."""

    reads = 0

    async def checkpoint(self, projection: str) -> int:
        self.reads += 1
        return await super().checkpoint(projection)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    # 100 waiters' first looks and the poller may all hold a connection at once.
    client = Redis.from_url(redis_url, decode_responses=True, max_connections=200)
    yield client
    await client.aclose()


async def _set_checkpoint(client: Redis, prefix: str, position: int) -> None:
    keys = ReadModelKeys(prefix)
    await client.set(keys.live(BALANCES), 1)
    await client.hset(keys.generation(BALANCES, 1).meta, "position", position)


async def test_many_waiting_requests_are_woken_by_one_poller(
    redis_client: Redis, redis_prefix: str
) -> None:
    await _set_checkpoint(redis_client, redis_prefix, 10)
    reader = CountingReader(redis_client, redis_prefix)
    watcher = CheckpointWatcher(reader, poll_s=0.01)
    waiters = [asyncio.create_task(watcher.wait_for(BALANCES, 11, 5000)) for _ in range(100)]
    await asyncio.sleep(0.3)
    assert not any(w.done() for w in waiters), "nobody may pass before the position is reached"
    reads_while_waiting = reader.reads
    await _set_checkpoint(redis_client, redis_prefix, 11)
    await asyncio.wait_for(asyncio.gather(*waiters), 2)
    # 100 first looks, then one poller: ~30 polls in 0.3 s, not 100 requests polling each.
    assert reads_while_waiting < 100 + 60


async def test_a_position_already_reached_answers_at_once_and_a_late_one_times_out(
    redis_client: Redis, redis_prefix: str
) -> None:
    await _set_checkpoint(redis_client, redis_prefix, 5)
    watcher = CheckpointWatcher(ReadModelReader(redis_client, redis_prefix))
    await watcher.wait_for(BALANCES, 5, 0)
    with pytest.raises(ProjectionBehind) as behind:
        await watcher.wait_for(BALANCES, 6, 50)
    assert "at position 5" in str(behind.value)


async def test_an_announced_checkpoint_wakes_the_waiting_requests_without_a_poll(
    redis_client: Redis, redis_url: str, redis_prefix: str
) -> None:
    await _set_checkpoint(redis_client, redis_prefix, 10)
    reader = CountingReader(redis_client, redis_prefix)
    subscriber = Redis.from_url(redis_url, decode_responses=True)
    channel = ReadModelKeys(redis_prefix).checkpoints
    watcher = CheckpointWatcher(reader, subscriber, channel, fallback_poll_s=600)
    try:
        waiters = [asyncio.create_task(watcher.wait_for(BALANCES, 11, 5000)) for _ in range(100)]
        await _subscribed(redis_client, channel)
        reads_once_subscribed = reader.reads
        await asyncio.sleep(0.3)
        assert not any(w.done() for w in waiters), "nobody may pass before the position is reached"
        # The look on subscribing and a poll in flight at most: no polling while subscribed
        # (~150 looks in 0.3 s at the poll interval).
        assert reader.reads - reads_once_subscribed <= 3
        # Only the announcement says 11: the checkpoint in Redis stays at 10.
        assert await redis_client.publish(channel, checkpoint_message(BALANCES, 11)) == 1
        await asyncio.wait_for(asyncio.gather(*waiters), 2)
    finally:
        await watcher.close()
        await subscriber.aclose()


async def _subscribed(client: Redis, channel: str) -> None:
    for _ in range(500):
        if dict(await client.pubsub_numsub(channel)).get(channel):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the watcher never subscribed")
