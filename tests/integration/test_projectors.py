"""The projectors against real Redis, real RQ and a real event store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.catch_up import PROJECTIONS, drain, open_context, run_catch_up
from projectors.jobs import enqueue_catch_up
from projectors.nudge import RedisNudgePublisher
from tests.support import (
    checkpoints,
    env_for,
    projected,
    read_side_settings,
    replay,
    write_traffic,
)
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

pytest_plugins = ["tests.fixtures"]  # settings, worker_env, rdb


def work_queue(settings: Settings) -> bool:
    connection = redis.Redis.from_url(settings.redis.url)
    try:
        queue = Queue(settings.redis.queue, connection=connection, serializer=JSONSerializer)
        worker = SimpleWorker(
            [queue],
            connection=connection,
            serializer=JSONSerializer,
            name=f"{settings.redis.prefix}-w",
        )
        return bool(worker.work(burst=True))
    finally:
        connection.close()


def queued_jobs(settings: Settings) -> list[str]:
    connection = redis.Redis.from_url(settings.redis.url)
    try:
        return list(
            Queue(settings.redis.queue, connection=connection, serializer=JSONSerializer).job_ids
        )
    finally:
        connection.close()


def nudge(settings: Settings, positions: list[int]) -> None:
    async def run() -> None:
        publisher = RedisNudgePublisher(settings)
        for position in positions:
            await publisher.events_committed("any", position)
        await publisher.close()

    asyncio.run(run())


@pytest.fixture
def store_settings(
    store_url: str, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    settings = read_side_settings(store_url, redis_url, redis_prefix)
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    return settings


def test_a_nudged_rq_job_projects_balances_and_statements_equal_to_a_replay(
    store_settings: Settings, rdb: redis.Redis
) -> None:
    head = write_traffic(store_settings.store.database_url, accounts=30, events_per_account=40)
    nudge(store_settings, [head])

    assert len(queued_jobs(store_settings)) == 1
    assert work_queue(store_settings)

    assert projected(rdb, store_settings.redis.prefix) == replay(store_settings.store.database_url)
    assert checkpoints(rdb, store_settings.redis.prefix) == {BALANCES: head, STATEMENTS: head}


def test_a_burst_of_commits_enqueues_one_job_and_raises_the_head_only_upwards(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    nudge(worker_env, [*range(1, 1001), 500])

    jobs = queued_jobs(worker_env)
    assert len(jobs) == 1
    assert worker_env.redis.prefix in jobs[0]
    assert rdb.get(ReadModelKeys(worker_env.redis.prefix).head) == "1000"


def test_the_job_clears_the_pending_flag_so_a_later_commit_nudges_again(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    write_traffic(worker_env.store.database_url, accounts=2, events_per_account=3)
    nudge(worker_env, [6])
    work_queue(worker_env)
    assert rdb.exists(ReadModelKeys(worker_env.redis.prefix).nudge_pending) == 0

    nudge(worker_env, [7])

    assert len(queued_jobs(worker_env)) == 1


def test_while_a_catch_up_runs_commits_raise_the_flag_without_queueing_more_jobs(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    keys = ReadModelKeys(worker_env.redis.prefix)
    rdb.set(keys.catch_up_running, 1, ex=30)  # as a running job does
    nudge(worker_env, [1, 2, 3])
    assert queued_jobs(worker_env) == []
    assert rdb.exists(keys.nudge_pending) == 1, "the running job will see the flag"
    assert rdb.lrange(keys.nudge_wake, 0, -1) == ["1"], "one token wakes it, pushed with the flag"

    write_traffic(worker_env.store.database_url, accounts=2, events_per_account=3)
    rdb.delete(keys.catch_up_running)
    asyncio.run(run_catch_up(worker_env))
    assert rdb.exists(keys.catch_up_running) == 0, "a finished job no longer claims to run"
    assert rdb.exists(keys.nudge_pending) == 0
    assert rdb.exists(keys.nudge_wake) == 0
    nudge(worker_env, [7])
    assert len(queued_jobs(worker_env)) == 1


def test_each_batch_applied_to_a_live_generation_announces_its_checkpoint(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    head = write_traffic(worker_env.store.database_url, accounts=3, events_per_account=4)
    subscription = rdb.pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(ReadModelKeys(worker_env.redis.prefix).checkpoints)
    try:
        asyncio.run(run_catch_up(worker_env))
        announced = []
        deadline = time.monotonic() + 1.0
        while len(announced) < 2 and time.monotonic() < deadline:
            # None also for the subscription's own confirmation, which is ignored.
            if (message := subscription.get_message(timeout=0.1)) is not None:
                announced.append(message["data"])
    finally:
        subscription.close()
    assert sorted(announced) == [f"{BALANCES} {head}", f"{STATEMENTS} {head}"]


def test_running_the_catch_up_again_changes_nothing(worker_env: Settings, rdb: redis.Redis) -> None:
    write_traffic(worker_env.store.database_url, accounts=10, events_per_account=20)
    asyncio.run(run_catch_up(worker_env))
    before = {
        key: rdb.dump(key)
        for key in rdb.scan_iter(f"{worker_env.redis.prefix}:*")
        if "meta" not in key and "metrics" not in key  # the metrics hash counts runs
    }

    passed = asyncio.run(run_catch_up(worker_env))

    assert passed == {BALANCES: 0, STATEMENTS: 0}
    after = {
        key: rdb.dump(key)
        for key in rdb.scan_iter(f"{worker_env.redis.prefix}:*")
        if "meta" not in key and "metrics" not in key  # the metrics hash counts runs
    }
    assert after == before


def test_a_replayed_batch_is_skipped_by_the_per_account_version_guard(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    write_traffic(worker_env.store.database_url, accounts=10, events_per_account=20)
    asyncio.run(run_catch_up(worker_env))
    keys = ReadModelKeys(worker_env.redis.prefix)
    for name in (BALANCES, STATEMENTS):  # as if a checkpoint write had been lost
        rdb.hset(keys.generation(name, 1).meta, "position", 0)

    asyncio.run(run_catch_up(worker_env))

    expected = replay(worker_env.store.database_url)
    assert projected(rdb, worker_env.redis.prefix) == expected
    summary = rdb.hgetall(keys.generation(BALANCES, 1).summary)
    assert int(summary["events"]) == sum(row["version"] for row in expected.balances.values())
    assert int(summary["accounts"]) == 10


def test_runners_racing_without_the_lock_never_apply_an_event_twice(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    write_traffic(worker_env.store.database_url, accounts=40, events_per_account=50)

    async def race() -> None:
        async with open_context(worker_env) as ctx:
            await asyncio.gather(
                *(
                    drain(ctx, projection, batch_size=97)
                    for projection in PROJECTIONS
                    for _ in range(4)
                )
            )

    asyncio.run(race())

    expected = replay(worker_env.store.database_url)
    assert projected(rdb, worker_env.redis.prefix) == expected
    summary = rdb.hgetall(ReadModelKeys(worker_env.redis.prefix).generation(BALANCES, 1).summary)
    assert int(summary["events"]) == sum(row["version"] for row in expected.balances.values())


def test_a_job_finding_the_projection_locked_exits_without_touching_it(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    head = write_traffic(worker_env.store.database_url, accounts=3, events_per_account=5)
    keys = ReadModelKeys(worker_env.redis.prefix)
    rdb.set(keys.lock(BALANCES), "another-runner", ex=30)

    passed = asyncio.run(run_catch_up(worker_env))

    assert passed == {BALANCES: 0, STATEMENTS: 15}
    assert checkpoints(rdb, worker_env.redis.prefix) == {BALANCES: 0, STATEMENTS: head}


def test_unknown_event_types_are_skipped_but_the_checkpoint_advances(
    worker_env: Settings, rdb: redis.Redis
) -> None:
    async def append() -> int:
        engine = create_async_store_engine(worker_env.store.database_url)
        store = EventStore(engine)
        await store.append("acct-x", [NewEvent.from_domain(AccountOpened("ann", "USD"))], 0)
        await store.append("acct-x", [NewEvent(type="InterestAccrued", payload={"rate": "0.1"})], 1)
        result = await store.append(
            "acct-x", [NewEvent.from_domain(MoneyDeposited(Decimal("2.50")))], 2
        )
        await engine.dispose()
        return result.last_position

    head = asyncio.run(append())
    enqueue_catch_up(redis.Redis.from_url(worker_env.redis.url), worker_env, reason="test")
    work_queue(worker_env)

    models = projected(rdb, worker_env.redis.prefix)
    assert models.balances["acct-x"]["balance"] == "2.50"
    assert models.balances["acct-x"]["version"] == 3
    assert [(e["type"], e["balance_after"]) for e in models.statements["acct-x"]] == [
        ("MoneyDeposited", "2.50"),
        ("AccountOpened", "0.00"),
    ]
    assert checkpoints(rdb, worker_env.redis.prefix) == {BALANCES: head, STATEMENTS: head}


def test_a_job_meant_for_another_prefix_is_refused(worker_env: Settings) -> None:
    connection = redis.Redis.from_url(worker_env.redis.url)
    queue = Queue(worker_env.redis.queue, connection=connection, serializer=JSONSerializer)
    job = queue.enqueue(
        "projectors.jobs.catch_up",
        f"other-{uuid.uuid4().hex[:6]}",
        job_id=f"{worker_env.redis.prefix}-misrouted",
    )

    work_queue(worker_env)

    job.refresh()
    assert job.is_failed
    assert "MisroutedJob" in (job.latest_result().exc_string or "")
    connection.close()
