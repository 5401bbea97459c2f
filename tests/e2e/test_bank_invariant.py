"""The bank invariant, in the style of Jepsen's bank test, against real processes on each backend.

Clients move money between accounts with random transfers, atomic batches and holds (some refused:
too much, the same account, another currency, a failing command in a batch; holds captured in
part, voided, or left for the worker to expire a second later; reversals of earlier transfers and
captures, some refused: a reversal of a reversal, a receiver without the money) while other clients read
`/summary` and balances in a loop. Money only moves, so every read of the total per currency must
equal what was deposited before the run; no balance may ever go below minus its overdraft limit.
Afterwards every acknowledged transfer (captures included) is in the store exactly once on each
side, every hold was resolved exactly once and none is left held, every acknowledged reversal is
recorded once and its original reads `reversed`, and each account's statement adds up to its
balance.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from kernel.settings import Settings
from tests.support import read_side_settings, running_services, wait_until
from write_side.audit.verify import verify_chain
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore

RUN_S = 6.0
MOVERS = 6
READERS = 2
ACCOUNTS = {f"usd-{n}": "USD" for n in range(6)} | {f"eur-{n}": "EUR" for n in range(2)}
OPENING = Decimal("100.00")
LIMITS = {"usd-0": Decimal("50.00"), "usd-1": Decimal("25.00")}
"""Overdraft limits set before the run; every other account has none."""


@pytest.fixture
def ledger(
    store_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[tuple[Settings, str, str]]:
    """Real write API, query API and worker on the test's backend."""
    settings = read_side_settings(store_url, redis_url, redis_prefix)
    with running_services(settings, tmp_path) as (write_url, query_url):
        yield settings, write_url, query_url


def _open_accounts(writes: httpx.Client) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for account_id, currency in ACCOUNTS.items():
        body = {"owner": account_id, "account_id": account_id, "currency": currency}
        assert writes.post("/accounts", json=body).status_code == 201
        deposit = writes.post(f"/accounts/{account_id}/deposit", json={"amount": str(OPENING)})
        assert deposit.status_code == 200, deposit.text
        totals[currency] += OPENING
    for account_id, limit in LIMITS.items():
        answer = writes.post(
            f"/accounts/{account_id}/overdraft-limit", json={"overdraft_limit": str(limit)}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["overdraft_limit"] == str(limit)
    return dict(totals)


def _transfer(rng: random.Random) -> dict[str, str]:
    source, target = rng.choice(list(ACCOUNTS)), rng.choice(list(ACCOUNTS))  # sometimes the same
    amount = Decimal(rng.randint(1, 9000)) / 100  # up to 90.00: some overdraw, most fit
    return {
        "from_account": source,
        "to_account": target,
        "amount": str(amount),
        "transfer_id": f"t-{uuid.uuid4().hex[:16]}",
    }


class Run:
    def __init__(self, write_url: str, query_url: str, totals: dict[str, Decimal]) -> None:
        self.write_url, self.query_url, self.totals = write_url, query_url, totals
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: list[str] = []
        self.holds: list[str] = []
        self.reversals: dict[str, str] = {}
        """Original transfer id -> the id of its acknowledged reversal."""
        self.refusals: Counter[str] = Counter()
        self.violations: list[str] = []
        self.reads = 0

    def move(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.write_url, timeout=15) as writes:
            while not self.stop.is_set():
                if rng.random() < 0.2:
                    self._hold(writes, rng)
                elif rng.random() < 0.15:
                    self._reverse(writes, rng)
                elif rng.random() < 0.25:
                    self._batch(writes, rng)
                else:
                    body = _transfer(rng)
                    answer = writes.post("/transfers", json=body)
                    self._record(answer, [body["transfer_id"]], 201)

    def _batch(self, writes: httpx.Client, rng: random.Random) -> None:
        bodies = [_transfer(rng) for _ in range(rng.randint(2, 4))]
        commands = [{"type": "transfer", **body} for body in bodies]
        answer = writes.post("/batches", json={"commands": commands})
        self._record(answer, [body["transfer_id"] for body in bodies], 200)

    def _hold(self, writes: httpx.Client, rng: random.Random) -> None:
        """Place a hold that expires in a second; then capture part of it, void it, or leave it."""
        body = _transfer(rng)
        hold_id = body.pop("transfer_id").replace("t-", "h-")
        placed = writes.post("/holds", json={**body, "hold_id": hold_id, "expires_in_s": 1})
        self._record(placed, [], 201)
        if placed.status_code != 201:
            return
        with self.lock:
            self.holds.append(hold_id)
        choice = rng.random()
        if choice < 0.4:
            part = Decimal(rng.randint(1, int(Decimal(body["amount"]) * 100))) / 100
            captured = writes.post(f"/holds/{hold_id}/capture", json={"amount": str(part)})
            self._record(captured, [hold_id], 200)  # a capture is a transfer with the hold's id
        elif choice < 0.7:
            self._record(writes.post(f"/holds/{hold_id}/void"), [], 200)

    def _reverse(self, writes: httpx.Client, rng: random.Random) -> None:
        """Reverse an acknowledged transfer, capture or reversal (that last one is refused)."""
        with self.lock:
            if not self.acknowledged:
                return
            original = rng.choice(self.acknowledged)
        answer = writes.post(f"/transfers/{original}/reverse")
        reversal = answer.json().get("transfer_id") if answer.status_code == 201 else None
        with self.lock:
            # Racing reversals of one transfer with the same (empty) body all get its first 201.
            first = reversal is not None and original not in self.reversals
            if first:
                assert reversal is not None
                self.reversals[original] = reversal
            elif reversal is not None and self.reversals[original] != reversal:
                self.violations.append(f"{original} reversed twice: {reversal}")
        self._record(answer, [reversal] if first and reversal else [], 201)

    def _record(self, answer: httpx.Response, transfer_ids: list[str], ok: int) -> None:
        with self.lock:
            if answer.status_code == ok:
                self.acknowledged.extend(transfer_ids)
            elif 400 <= answer.status_code < 500:
                self.refusals[answer.json()["error"]] += 1
            else:
                self.violations.append(f"{answer.status_code}: {answer.text}")

    def read(self) -> None:
        with httpx.Client(base_url=self.query_url, timeout=15) as queries:
            while not self.stop.is_set():
                summary = queries.get("/summary").json()
                seen = {c: Decimal(v) for c, v in summary["balances_by_currency"].items()}
                problems = [] if seen == self.totals else [f"summary {seen} != {self.totals}"]
                for account_id in ACCOUNTS:
                    balance = queries.get(f"/accounts/{account_id}/balance").json()
                    floor = -LIMITS.get(account_id, Decimal("0"))
                    if Decimal(balance["balance"]) < floor or Decimal(balance["available"]) < 0:
                        problems.append(f"overdrawn: {balance}")
                with self.lock:
                    self.reads += 1
                    self.violations.extend(problems)


async def _stored_transfer_sides(database_url: str) -> Counter[tuple[str, str]]:
    engine = create_async_store_engine(database_url)
    try:
        store = EventStore(engine)
        sides: Counter[tuple[str, str]] = Counter()
        position = 0
        while batch := await store.read_after(position, 1000):
            position = batch[-1].position
            for event in batch:
                if event.type in ("TransferSent", "TransferReceived"):
                    sides[(event.payload["transfer_id"], event.type)] += 1
        return sides
    finally:
        await engine.dispose()


async def _recorded_reversals(database_url: str) -> Counter[str]:
    """How many reversals the store holds of each original transfer."""
    engine = create_async_store_engine(database_url)
    try:
        store = EventStore(engine)
        reversed_: Counter[str] = Counter()
        position = 0
        while batch := await store.read_after(position, 1000):
            position = batch[-1].position
            for event in batch:
                if event.type == "TransferSent" and event.payload.get("reversal_of"):
                    reversed_[event.payload["reversal_of"]] += 1
        return reversed_
    finally:
        await engine.dispose()


async def _hold_resolutions(database_url: str) -> Counter[str]:
    """How many times each hold was resolved (its "from" side's resolution events)."""
    engine = create_async_store_engine(database_url)
    try:
        store = EventStore(engine)
        resolved: Counter[str] = Counter()
        position = 0
        while batch := await store.read_after(position, 1000):
            position = batch[-1].position
            for event in batch:
                if event.type.startswith("Hold") and event.payload["side"] == "from":
                    placed = event.type == "HoldPlaced"
                    resolved[event.payload["hold_id"]] += 0 if placed else 1
        return resolved
    finally:
        await engine.dispose()


def _wait_until_projected(queries: httpx.Client, database_url: str) -> None:
    async def head() -> int:
        engine = create_async_store_engine(database_url)
        try:
            return await EventStore(engine).head_position()
        finally:
            await engine.dispose()

    position = asyncio.run(head())
    wait_until(
        lambda: all(p["checkpoint"] >= position for p in queries.get("/projections").json()),
        30,
        f"the projections to reach {position}",
    )


def _statement_sum(queries: httpx.Client, account_id: str) -> tuple[Decimal, list[dict[str, str]]]:
    entries: list[dict[str, str]] = []
    before: int | None = None
    while True:
        params = {"limit": 200} | ({"before_version": before} if before else {})
        page = queries.get(f"/accounts/{account_id}/statement", params=params).json()
        entries.extend(page["entries"])
        before = page["next_before_version"]
        if before is None:
            return sum((Decimal(e["amount"]) for e in entries), Decimal("0")), entries


def test_money_is_neither_created_nor_lost_nor_overdrawn_under_concurrent_transfers(
    ledger: tuple[Settings, str, str],
) -> None:
    settings, write_url, query_url = ledger
    with httpx.Client(base_url=write_url, timeout=15) as writes:
        run = Run(write_url, query_url, _open_accounts(writes))
    with httpx.Client(base_url=query_url, timeout=15) as queries:
        _wait_until_projected(queries, settings.store.database_url)

    threads = [threading.Thread(target=run.move, args=(seed,)) for seed in range(MOVERS)]
    threads += [threading.Thread(target=run.read) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    time.sleep(RUN_S)  # the run's length; every check below is on what happened in it
    run.stop.set()
    for thread in threads:
        thread.join(timeout=60)

    assert not run.violations, run.violations[:10]
    assert len(run.acknowledged) >= 20, "too little traffic to prove anything"
    assert run.reads >= 5
    assert {"insufficient_funds", "same_account", "currency_mismatch"} <= set(run.refusals)
    assert run.refusals["batch_failed"] > 0

    assert run.holds, "no hold was placed"
    database_url = settings.store.database_url
    wait_until(
        lambda: all(asyncio.run(_hold_resolutions(database_url)).values()),
        30,
        "every hold to be resolved (the worker expires the ones left alone)",
    )
    resolutions = asyncio.run(_hold_resolutions(database_url))
    assert all(resolutions[hold_id] == 1 for hold_id in run.holds), resolutions
    assert set(resolutions) == set(run.holds), "a refused hold left an event behind"

    sides = asyncio.run(_stored_transfer_sides(settings.store.database_url))
    for transfer_id in run.acknowledged:
        assert sides[(transfer_id, "TransferSent")] == 1, transfer_id
        assert sides[(transfer_id, "TransferReceived")] == 1, transfer_id
    assert len(sides) == 2 * len(run.acknowledged), "a refused transfer left an event behind"
    assert run.reversals, "no reversal was made"
    recorded = asyncio.run(_recorded_reversals(settings.store.database_url))
    assert recorded == Counter(dict.fromkeys(run.reversals, 1)), "each reversal recorded once"

    with httpx.Client(base_url=query_url, timeout=15) as queries:
        _wait_until_projected(queries, settings.store.database_url)
        totals: dict[str, Decimal] = defaultdict(Decimal)
        listed: Counter[str] = Counter()
        for account_id, currency in ACCOUNTS.items():
            balance = queries.get(f"/accounts/{account_id}/balance").json()
            assert balance["held"] == "0.00", balance
            pending = queries.get(f"/accounts/{account_id}/holds", params={"status": "pending"})
            assert pending.json()["holds"] == [], account_id
            total, entries = _statement_sum(queries, account_id)
            assert total == Decimal(balance["balance"]), account_id
            totals[currency] += Decimal(balance["balance"])
            listed.update(
                e["transfer_id"] for e in entries if e.get("transfer_id") and not e["hold_amount"]
            )
        assert dict(totals) == run.totals
        assert all(listed[t] == 2 for t in run.acknowledged), "each side's statement lists it"
        for original, reversal in run.reversals.items():
            shown = queries.get(f"/transfers/{original}").json()
            assert (shown["status"], shown["reversed_by"]) == ("reversed", reversal), shown
            assert queries.get(f"/transfers/{reversal}").json()["reversal_of"] == original
        kept = next(t for t in run.acknowledged if t not in run.reversals)
        assert queries.get(f"/transfers/{kept}").json()["status"] == "posted"

    # Every append of the run, from concurrent requests sharing group commits, is one hash chain.
    engine = create_sync_store_engine(settings.store.database_url)
    try:
        verdict = verify_chain(engine)
    finally:
        engine.dispose()
    assert verdict.ok, verdict.reason
