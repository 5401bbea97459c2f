"""The query API's pipelined Redis connection, against the real Redis: many callers share one
connection and each gets its own reply; it survives a killed connection and a script Redis does not
know; a Redis that does not answer, or is not there, is the error redis-py would raise."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from read_side.pipelined_redis import PipelinedRedis
from tests.support import free_port


@pytest.fixture
async def pipelined(redis_url: str) -> AsyncIterator[PipelinedRedis]:
    client = PipelinedRedis(redis_url, timeout_s=2.0)
    yield client
    await client.aclose()


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_concurrent_callers_each_get_their_own_reply(
    pipelined: PipelinedRedis, plain: Redis, redis_prefix: str
) -> None:
    keys = [f"{redis_prefix}:value:{n}" for n in range(300)]
    await plain.mset({key: f"v{n}" for n, key in enumerate(keys)})

    replies = await asyncio.gather(*(pipelined.execute("GET", key) for key in keys))

    assert replies == [f"v{n}" for n in range(300)]
    assert await pipelined.execute("CLIENT", "ID") == await pipelined.execute("CLIENT", "ID")


async def test_a_script_redis_does_not_know_is_sent_in_full_once(
    pipelined: PipelinedRedis, plain: Redis, redis_prefix: str
) -> None:
    # A comment nobody else sends makes a digest Redis has never seen: EVALSHA says NOSCRIPT.
    source = f"-- {uuid.uuid4().hex}\nreturn redis.call('GET', KEYS[1]) .. ARGV[1]"
    script = pipelined.register_script(source)
    await plain.set(f"{redis_prefix}:k", "a")

    assert await script(keys=[f"{redis_prefix}:k"], args=["b"]) == "ab"
    assert await plain.script_exists(script.sha) == [True]
    assert await script(keys=[f"{redis_prefix}:k"], args=["c"]) == "ac"


async def test_an_error_reply_is_raised_to_its_caller_only(pipelined: PipelinedRedis) -> None:
    wrong, right = await asyncio.gather(
        pipelined.execute("INCR-NOT-A-COMMAND"), pipelined.execute("PING"), return_exceptions=True
    )

    assert isinstance(wrong, ResponseError)
    assert right == "PONG"


async def test_a_killed_connection_is_made_again_and_the_read_retried(
    pipelined: PipelinedRedis, plain: Redis
) -> None:
    first = await pipelined.execute("CLIENT", "ID")
    await plain.execute_command("CLIENT", "KILL", "ID", first)

    second = await pipelined.execute("CLIENT", "ID")

    assert second != first


async def test_no_answer_within_the_timeout_is_a_timeout_and_the_next_read_works(
    redis_url: str, redis_prefix: str
) -> None:
    client = PipelinedRedis(redis_url, timeout_s=0.3)
    try:
        # A blocking pop on an empty list of our own: this connection gets no reply for 5 s.
        with pytest.raises(RedisTimeoutError):
            await client.execute("BLPOP", f"{redis_prefix}:empty", 5)
        assert await client.execute("PING") == "PONG"
    finally:
        await client.aclose()


async def test_a_redis_that_is_not_there_is_a_connection_error() -> None:
    client = PipelinedRedis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=1.0)
    with pytest.raises(RedisConnectionError):
        await client.execute("PING")
    await client.aclose()


@pytest.mark.parametrize(
    ("url", "supported"),
    [
        ("redis://localhost:6379/0", True),
        ("unix:///var/run/redis.sock?db=0", True),
        ("rediss://localhost:6380/0", False),
    ],
)
def test_plain_and_unix_socket_urls_are_pipelined_and_tls_is_left_to_redis_py(
    url: str, supported: bool
) -> None:
    assert PipelinedRedis.supports(url) is supported
