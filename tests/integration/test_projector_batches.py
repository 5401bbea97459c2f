"""Projection batches end on store-transaction boundaries: the two sides of a transfer (and the
events of any multi-event append) are applied in one batch, so no checkpoint lands between them.
Against real Redis and a real event store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis
from redis.asyncio import Redis

from kernel.events import AccountOpened, MoneyDeposited, NewEvent
from kernel.read_model_layout import ReadModelKeys, StoredSummary
from projectors.batches import PEEK
from projectors.catch_up import PROJECTIONS, ProjectionContext, drain, live_generation
from tests.support import append_transfer
from write_side.store.event_store import EventStore


@pytest.fixture
async def ctx(
    store: EventStore, redis_url: str, redis_prefix: str
) -> AsyncIterator[ProjectionContext]:
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield ProjectionContext(redis, store, ReadModelKeys(redis_prefix))
    finally:
        await redis.aclose()


async def open_account(store: EventStore, account_id: str) -> None:
    opened = NewEvent.from_domain(AccountOpened(owner=account_id, currency="USD"))
    await store.append(account_id, [opened], expected_version=0)


def deposit(amount: str = "1.00") -> NewEvent:
    return NewEvent.from_domain(MoneyDeposited(Decimal(amount)))


async def checkpoints_after_each_batch(
    ctx: ProjectionContext, batch_size: int
) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for projection in PROJECTIONS:
        positions = seen.setdefault(projection.name, [])
        await drain(
            ctx,
            projection,
            batch_size=batch_size,
            on_batch=lambda _, position, positions=positions: positions.append(position),
        )
    return seen


async def test_a_transfer_straddling_the_batch_size_is_applied_whole_in_one_batch(
    ctx: ProjectionContext, store: EventStore
) -> None:
    await open_account(store, "a")  # 1
    await open_account(store, "b")  # 2
    assert await append_transfer(store, "a", "b", "5.00", "t-1") == 4  # 3 and 4
    await store.append("b", [deposit()], expected_version=2)  # 5

    seen = await checkpoints_after_each_batch(ctx, batch_size=3)

    assert seen == {"balances": [4, 5], "statements": [4, 5]}, "never a checkpoint at 3"


async def test_a_transaction_longer_than_the_look_ahead_is_still_applied_whole(
    ctx: ProjectionContext, store: EventStore
) -> None:
    await open_account(store, "a")  # 1
    many = await store.append("a", [deposit() for _ in range(2 * PEEK + 5)], expected_version=1)
    await store.append("a", [deposit()], expected_version=many.last_version)

    seen = await checkpoints_after_each_batch(ctx, batch_size=2)

    assert seen["balances"] == [many.last_position, many.last_position + 1]


async def test_after_every_batch_the_accounts_add_up_to_the_summary_total(
    ctx: ProjectionContext, store: EventStore, redis_url: str
) -> None:
    await open_account(store, "a")
    await open_account(store, "b")
    await store.append("a", [deposit("10.00")], expected_version=1)
    for n in range(5):
        source, target = ("a", "b") if n % 2 == 0 else ("b", "a")
        await append_transfer(store, source, target, f"{n + 1}.00", f"t-{n}")
    balances = PROJECTIONS[0]
    keys = ctx.keys.generation(balances.name, await live_generation(ctx, balances.name))
    looks: list[tuple[int, int, int]] = []
    reader = redis.Redis.from_url(redis_url, decode_responses=True)

    def look(_: int, position: int) -> None:  # a reader right after each batch
        total = StoredSummary.from_hash(reader.hgetall(keys.summary)).balances.get("USD", 0)
        accounts = sum(int(reader.hget(keys.account(a), "balance") or 0) for a in ("a", "b"))
        looks.append((position, total, accounts))

    try:
        await drain(ctx, balances, batch_size=1, on_batch=look)
    finally:
        reader.close()

    assert [position for position, _, _ in looks] == [1, 2, 3, 5, 7, 9, 11, 13]
    assert all(total == accounts for _, total, accounts in looks), looks
    assert looks[-1][1:] == (1000, 1000)
