"""Requests waiting for `min_position` share one checkpoint poller per process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kernel.read_model_layout import BALANCES, ReadModelKeys
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
    client = Redis.from_url(redis_url, decode_responses=True)
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
