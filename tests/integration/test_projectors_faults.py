"""Faults with real processes: Redis down during commits, a worker SIGKILLed mid catch-up, several
workers at once. In every case the read models end equal to a fresh replay of the store."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.jobs import enqueue_catch_up
from projectors.nudge import RedisNudgePublisher
from tests.support import (
    checkpoints,
    make_settings,
    projected,
    replay,
    start_bank,
    stop,
    wait_until,
    write_traffic,
)

pytest_plugins = ["tests.fixtures"]  # settings, worker_env, rdb

pytestmark = pytest.mark.fault

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def test_commits_while_redis_is_down_succeed_and_the_sweep_projects_them_once_redis_is_back(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    head = write_traffic(settings.store.database_url, accounts=5, events_per_account=10)
    unreachable = make_settings(settings, redis_url=CLOSED_PORT_REDIS)

    async def announce_while_redis_is_down() -> None:
        publisher = RedisNudgePublisher(unreachable)
        for position in range(1, head + 1):
            await publisher.events_committed("acct-00000", position)  # must not raise
        await publisher.close()

    asyncio.run(announce_while_redis_is_down())
    assert list(rdb.scan_iter(f"*{settings.redis.prefix}*")) == []  # nothing reached Redis

    worker = start_bank(["worker"], settings, tmp_path / "worker.log")
    try:
        wait_until(
            lambda: checkpoints(rdb, settings.redis.prefix) == {BALANCES: head, STATEMENTS: head},
            timeout=30,
            what="the periodic sweep to catch up without any nudge",
        )
    finally:
        stop(worker)
    assert projected(rdb, settings.redis.prefix) == replay(settings.store.database_url)


def test_a_worker_killed_mid_catch_up_and_restarted_leaves_models_equal_to_a_replay(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    head = write_traffic(
        settings.store.database_url, accounts=200, events_per_account=100, chunk=50
    )
    assert head >= 20_000
    worker = start_bank(["worker"], settings, tmp_path / "worker.log")
    try:
        wait_until(
            lambda: checkpoints(rdb, settings.redis.prefix)[BALANCES] > 0,
            timeout=30,
            what="the first batch",
            every=0.002,
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    finally:
        stop(worker)
    at_kill = checkpoints(rdb, settings.redis.prefix)
    assert min(at_kill.values()) < head, "the worker finished before it could be killed"

    restarted = start_bank(["worker"], settings, tmp_path / "worker.log")
    try:
        wait_until(
            lambda: checkpoints(rdb, settings.redis.prefix) == {BALANCES: head, STATEMENTS: head},
            timeout=60,
            what="the restarted worker to catch up (after the dead runner's lock expires)",
        )
    finally:
        stop(restarted)

    expected = replay(settings.store.database_url)
    assert projected(rdb, settings.redis.prefix) == expected
    summary = rdb.hgetall(ReadModelKeys(settings.redis.prefix).generation(BALANCES, 1).summary)
    assert int(summary["events"]) == sum(len(entries) for entries in expected.statements.values())


def test_several_workers_started_at_once_never_double_apply(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    head = write_traffic(settings.store.database_url, accounts=50, events_per_account=100)
    connection = redis.Redis.from_url(settings.redis.url)
    for _ in range(6):
        enqueue_catch_up(connection, settings, reason="test")
    connection.close()

    workers = [
        start_bank(["worker", "--burst"], settings, tmp_path / f"worker-{n}.log") for n in range(3)
    ]
    try:
        exit_codes = [worker.wait(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            stop(worker)

    assert exit_codes == [0, 0, 0]
    queue = Queue(
        settings.redis.queue,
        connection=redis.Redis.from_url(settings.redis.url),
        serializer=JSONSerializer,
    )
    assert queue.failed_job_registry.count == 0
    assert checkpoints(rdb, settings.redis.prefix) == {BALANCES: head, STATEMENTS: head}
    expected = replay(settings.store.database_url)
    assert projected(rdb, settings.redis.prefix) == expected
    summary = rdb.hgetall(ReadModelKeys(settings.redis.prefix).generation(BALANCES, 1).summary)
    assert int(summary["events"]) == sum(len(entries) for entries in expected.statements.values())
