"""Balances as of an instant and statements by time range, through the query API over real Redis
and a real projection, checked against a replay of the store (SQLite and PostgreSQL).

The history is written over time (small pauses between appends), with several events of one
account in a single append (one instant on SQLite), transfers (two accounts in one store
transaction), an overdraft limit, a closing, and holds through the write API: one captured in
part, one voided, one left pending, and one expired (captured after its 1-second deadline, so the
write side appends HoldExpired instead). The expected answers are folded here from the events read
back from SQL, independently of the projector code.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise
from typing import Any

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from kernel.events import (
    AccountClosed,
    AccountOpened,
    DomainEvent,
    MoneyDeposited,
    MoneyWithdrawn,
    NewEvent,
)
from kernel.read_model_layout import BALANCES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.balances import BalancesProjection
from projectors.catch_up import open_context, run_catch_up
from projectors.rebuild import rebuild_projection
from projectors.statements import StatementsProjection
from read_side.api.app import create_query_app
from tests.integration.write_api_client import write_api
from tests.support import append_transfer, env_for, read_side_settings, set_overdraft_limit
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

pytest_plugins = ["tests.fixtures"]  # rdb

ACCOUNTS = ("hist-a", "hist-b", "hist-c", "hist-d")
MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class State:
    """An account after one of its events, folded from the store."""

    recorded_at: datetime
    version: int
    position: int
    balance: Decimal
    overdraft_limit: Decimal
    held: Decimal
    status: str

    @property
    def available(self) -> Decimal:
        return self.balance + self.overdraft_limit - self.held


@pytest.fixture
def store_settings(
    store_url: str, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    settings = read_side_settings(store_url, redis_url, redis_prefix)
    for name, value in env_for(settings).items():
        monkeypatch.setenv(name, value)
    return settings


async def _append(store: EventStore, account_id: str, *events: DomainEvent) -> None:
    version = await store.stream_version(account_id)
    await store.append(account_id, [NewEvent.from_domain(e) for e in events], version)


class Holds:
    """The history's holds, placed and resolved through the write API (the write side decides
    them, as in production), each checked to be answered as intended."""

    def __init__(self, api: AsyncTestClient[Litestar]) -> None:
        self._api = api
        self.expires_at: dict[str, datetime] = {}

    async def place(
        self, hold_id: str, source: str, target: str, amount: str, expires_in_s: int
    ) -> None:
        # Money the appends straight to the store may have taken: the hold must be affordable.
        await self._ok(f"/accounts/{source}/deposit", {"amount": "1000.00"}, 200)
        body = {"from_account": source, "to_account": target, "amount": amount}
        placed = await self._ok(
            "/holds", {**body, "hold_id": hold_id, "expires_in_s": expires_in_s}, 201
        )
        self.expires_at[hold_id] = datetime.fromisoformat(placed["expires_at"])

    async def capture(self, hold_id: str, amount: str) -> None:
        captured = await self._ok(f"/holds/{hold_id}/capture", {"amount": amount}, 200)
        assert (captured["status"], captured["captured_amount"]) == ("captured", amount)

    async def void(self, hold_id: str) -> None:
        assert (await self._ok(f"/holds/{hold_id}/void", None, 200))["status"] == "voided"

    async def capture_after_the_deadline(self, hold_id: str) -> None:
        """The write side finds the hold due: it appends the expiry and answers 409 "expired"."""
        while datetime.now(UTC) <= self.expires_at[hold_id]:
            await asyncio.sleep(0.05)
        refused = await self._api.post(f"/holds/{hold_id}/capture")
        assert (refused.status_code, refused.json()["status"]) == (409, "expired"), refused.text

    async def _ok(self, path: str, body: dict[str, Any] | None, status: int) -> dict[str, Any]:
        response = await self._api.post(path, json=body) if body else await self._api.post(path)
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        return answer


async def write_history_over_time(database_url: str, steps: int = 36, seed: int = 12) -> None:
    """Accounts opened at different times, then money moving with pauses in between; holds
    placed and resolved through the write API along the way."""
    rng = random.Random(seed)
    engine = create_async_store_engine(database_url)
    try:
        async with write_api(database_url) as api:
            await _write_history(EventStore(engine), Holds(api), rng, steps)
    finally:
        await engine.dispose()


async def _write_history(store: EventStore, holds: Holds, rng: random.Random, steps: int) -> None:
    await _append(store, "hist-a", AccountOpened(owner="A", currency="EUR"))
    await asyncio.sleep(0.002)
    await _append(store, "hist-b", AccountOpened(owner="B", currency="EUR"))
    await _append(store, "hist-a", MoneyDeposited(Decimal("100.00")))
    opened = {"hist-a", "hist-b"}
    for step in range(steps):
        await asyncio.sleep(rng.choice([0, 0.001, 0.003]))
        if step == 8:
            await _append(store, "hist-c", AccountOpened(owner="C", currency="EUR"))
            opened.add("hist-c")
        elif step == 20:
            await _append(store, "hist-d", AccountOpened(owner="D", currency="EUR"))
            opened.add("hist-d")
        elif step == 26:
            await set_overdraft_limit(store, "hist-b", "50.00")
        await _hold_step(holds, step)
        account = rng.choice(sorted(opened))
        kind = rng.choice(["deposit", "several", "withdraw", "transfer"])
        amount = Decimal(rng.randint(1, 3000)) / 100
        if kind == "deposit":
            await _append(store, account, MoneyDeposited(amount))
        elif kind == "several":  # one append: one instant on SQLite
            several = (MoneyDeposited(amount), MoneyWithdrawn(Decimal("0.01")))
            await _append(store, account, *several, MoneyDeposited(Decimal("0.02")))
        elif kind == "withdraw":
            await _append(store, account, MoneyWithdrawn(Decimal("0.50")))
        else:
            target = rng.choice(sorted(opened - {account}))
            await append_transfer(store, account, target, str(amount), f"t-{step}")
    await holds.capture_after_the_deadline("h-expiring")
    await _append(store, "hist-c", AccountClosed())


async def _hold_step(holds: Holds, step: int) -> None:
    """Each hold's life, spread over the steps (between accounts open at the time)."""
    if step == 2:
        await holds.place("h-expiring", "hist-a", "hist-b", "12.34", expires_in_s=1)
    elif step == 5:
        await holds.place("h-captured", "hist-b", "hist-a", "25.00", expires_in_s=600)
    elif step == 12:
        await holds.capture("h-captured", "10.05")
    elif step == 14:
        await holds.place("h-voided", "hist-a", "hist-c", "7.50", expires_in_s=600)
    elif step == 18:
        await holds.void("h-voided")
    elif step == 24:
        await holds.place("h-pending", "hist-d", "hist-b", "4.00", expires_in_s=600)


async def states_from_store(database_url: str) -> dict[str, list[State]]:
    """Every account's state after each of its events, folded from the events read from SQL."""
    engine = create_async_store_engine(database_url)
    states: dict[str, list[State]] = {}
    try:
        events = await EventStore(engine).read_after(0, 100_000)
    finally:
        await engine.dispose()
    for event in events:
        history = states.setdefault(event.stream_id, [])
        before = history[-1] if history else None
        balance = before.balance if before else Decimal(0)
        limit = before.overdraft_limit if before else Decimal(0)
        held = before.held if before else Decimal(0)
        status = before.status if before else "open"
        amount = Decimal(event.payload.get("amount", "0"))
        if event.type in ("MoneyDeposited", "TransferReceived"):
            balance += amount
        elif event.type in ("MoneyWithdrawn", "TransferSent"):
            balance -= amount
        elif event.type == "OverdraftLimitSet":
            limit = Decimal(event.payload["limit"])
        elif event.type == "AccountClosed":
            status = "closed"
        held += held_change(event.type, event.payload)
        history.append(
            State(event.recorded_at, event.version, event.position, balance, limit, held, status)
        )
    return states


def held_change(kind: str, payload: dict[str, Any]) -> Decimal:
    """How a hold event moves `held`: only on the sending ("from") side, up as the hold is placed
    and down by its whole amount as it is resolved. The balance moves only on the capture's
    TransferSent/TransferReceived, which follow its HoldCaptured."""
    if payload.get("side") != "from":
        return Decimal(0)
    if kind == "HoldPlaced":
        return Decimal(payload["amount"])
    if kind == "HoldCaptured":
        return -(Decimal(payload["captured_amount"]) + Decimal(payload["released_amount"]))
    if kind in ("HoldVoided", "HoldExpired"):
        return -Decimal(payload["amount"])
    return Decimal(0)


def expected_at(history: list[State], instant: datetime) -> State | None:
    """The state after the account's last event recorded at or before `instant`."""
    recorded = [s for s in history if s.recorded_at <= instant]
    return recorded[-1] if recorded else None


def instants_to_try(states: dict[str, list[State]], rng: random.Random) -> list[datetime]:
    """Every recorded instant, a microsecond either side of it, halfway to the next one, before
    the first event, after the last, and random instants in between."""
    times = sorted({s.recorded_at for history in states.values() for s in history})
    chosen = {times[0] - timedelta(seconds=1), times[-1] + timedelta(hours=1)}
    for earlier, later in pairwise(times):
        chosen |= {earlier, earlier - MICRO, earlier + MICRO, earlier + (later - earlier) / 2}
    chosen.add(times[-1])
    span = (times[-1] - times[0]) / MICRO
    chosen |= {times[0] + rng.uniform(-0.05, 1.05) * span * MICRO for _ in range(40)}
    return sorted(chosen)


ZONES = (UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30)))


def as_text(instant: datetime, rng: random.Random) -> str:
    """The instant in UTC or another offset: the answer must not depend on how it is written."""
    return instant.astimezone(rng.choice(ZONES)).isoformat()


@pytest.fixture
async def history(store_settings: Settings) -> dict[str, list[State]]:
    await write_history_over_time(store_settings.store.database_url)
    await run_catch_up(store_settings)
    states = await states_from_store(store_settings.store.database_url)
    for account_id, account_states in states.items():  # the definition below relies on it
        times = [s.recorded_at for s in account_states]
        assert times == sorted(times), f"{account_id}: recorded times go back"
    if store_settings.store.database_url.startswith("sqlite"):  # one instant per append there
        assert any(len(set(times)) < len(times) for times in recorded_times(states))
    return states


def recorded_times(states: dict[str, list[State]]) -> list[list[datetime]]:
    return [[s.recorded_at for s in account_states] for account_states in states.values()]


@asynccontextmanager
async def query_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_query_app(settings)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://query"
        ) as client,
    ):
        yield client


async def balances_as_of_every_instant(
    query: httpx.AsyncClient, states: dict[str, list[State]], seed: int
) -> list[str]:
    """Ask the API at every instant worth trying; the differences from the replay."""
    rng = random.Random(seed)
    differences = []
    for instant in instants_to_try(states, rng):
        for account_id in ACCOUNTS:
            response = await query.get(
                f"/accounts/{account_id}/balance", params={"as_of": as_text(instant, rng)}
            )
            want = expected_at(states[account_id], instant)
            got: Any = response.json()
            if want is None:
                if (response.status_code, got["error"]) != (404, "account_not_found"):
                    differences.append(f"{account_id} at {instant}: {got}, want 404")
                continue
            expected = {
                "balance": f"{want.balance:.2f}",
                "overdraft_limit": f"{want.overdraft_limit:.2f}",
                "held": f"{want.held:.2f}",
                "available": f"{want.available:.2f}",
                "status": want.status,
                "version": want.version,
                "position": want.position,
                "as_of": instant.isoformat(timespec="microseconds"),
            }
            actual = {k: got.get(k) for k in expected}
            if response.status_code != 200 or actual != expected:
                differences.append(f"{account_id} at {instant}: {got}, want {expected}")
    return differences


async def test_balances_as_of_many_instants_equal_a_replay_of_the_store(
    history: dict[str, list[State]], store_settings: Settings
) -> None:
    async with query_api(store_settings) as query:
        differences = await balances_as_of_every_instant(query, history, seed=3)

    assert differences == []


async def test_statements_between_two_instants_equal_a_replay_of_the_store(
    history: dict[str, list[State]], store_settings: Settings
) -> None:
    rng = random.Random(5)
    instants = instants_to_try(history, rng)
    ranges = [(None, None), (instants[0], None), (None, instants[-1])] + [
        tuple(sorted(rng.sample(instants, 2))) for _ in range(25)
    ]
    ranges += [(instant, instant) for instant in rng.sample(instants, 5)]
    async with query_api(store_settings) as query:
        for since, until in ranges:
            for account_id in ACCOUNTS:
                want = [
                    s.version
                    for s in reversed(history[account_id])
                    if (since is None or s.recorded_at >= since)
                    and (until is None or s.recorded_at <= until)
                ]
                params = {
                    **({"from": as_text(since, rng)} if since else {}),
                    **({"to": as_text(until, rng)} if until else {}),
                    "limit": 3,
                }
                got, pages = await all_pages(query, account_id, params)

                assert got == want, (account_id, since, until)
                assert pages == max(1, -(-len(want) // 3)), (account_id, since, until)


async def all_pages(
    query: httpx.AsyncClient, account_id: str, params: dict[str, Any]
) -> tuple[list[int], int]:
    versions: list[int] = []
    pages, before = 0, None
    while True:
        page = {**params, **({"before_version": before} if before else {})}
        response = await query.get(f"/accounts/{account_id}/statement", params=page)
        assert response.status_code == 200, response.text
        body = response.json()
        versions += [entry["version"] for entry in body["entries"]]
        pages += 1
        before = body["next_before_version"]
        if before is None:
            return versions, pages


def time_indexes(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Both time indexes of every account in the live generations, members and scores."""
    keys = ReadModelKeys(prefix)
    balances = keys.generation(BALANCES, int(client.get(keys.live(BALANCES)) or 1))
    statements = keys.generation(STATEMENTS, int(client.get(keys.live(STATEMENTS)) or 1))
    return {
        account_id: (
            client.zrange(balances.history(account_id), 0, -1, withscores=True),
            client.zrange(statements.statement_times(account_id), 0, -1, withscores=True),
        )
        for account_id in ACCOUNTS
    }


async def test_a_rebuild_gives_the_same_history_and_the_same_answers(
    history: dict[str, list[State]], store_settings: Settings, rdb: redis.Redis
) -> None:
    before = time_indexes(rdb, store_settings.redis.prefix)
    async with open_context(store_settings) as ctx:
        for projection in (BalancesProjection(), StatementsProjection()):
            result = await rebuild_projection(ctx, projection)
            assert result.new_generation > result.old_generation

    assert time_indexes(rdb, store_settings.redis.prefix) == before
    assert all(len(h) == len(history[a]) for a, (h, _) in before.items())
    async with query_api(store_settings) as query:
        assert await balances_as_of_every_instant(query, history, seed=4) == []


async def test_replaying_the_store_over_the_projected_read_models_adds_no_history(
    history: dict[str, list[State]], store_settings: Settings, rdb: redis.Redis
) -> None:
    prefix = store_settings.redis.prefix
    before = time_indexes(rdb, prefix)
    keys = ReadModelKeys(prefix)
    for name in (BALANCES, STATEMENTS):  # a checkpoint behind its data: every batch comes again
        rdb.hset(keys.generation(name, 1).meta, "position", 0)

    await run_catch_up(store_settings)

    assert time_indexes(rdb, prefix) == before
    assert all(len(h) == len(history[a]) for a, (h, _) in before.items())
