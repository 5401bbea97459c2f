"""One busy account under many concurrent clients, through two real `bank write-api` processes on
each backend: inside a process the commands queue up and are appended together, across the two
the store's expected version arbitrates. Nothing acknowledged is lost or doubled, nothing is
overdrawn, no answer is a 5xx, and every answer agrees with the store.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, read_side_settings, start_bank, stop, wait_until
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore

CLIENTS = 40
COMMANDS_PER_CLIENT = 8
OPENING = Decimal("20.00")


def _serving(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def write_apis(
    store_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, list[str]]]:
    """Two write API processes on one store: (the store's URL, their URLs)."""
    settings = read_side_settings(store_url, redis_url, redis_prefix)
    ports = [free_port(), free_port()]
    processes = []
    try:
        for n, port in enumerate(ports):
            args = ["write-api", "--port", str(port)]
            processes.append(start_bank(args, settings, tmp_path / f"write-api-{n}.log"))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            wait_until(lambda url=url: _serving(url), 30, f"{url} to answer")
        yield store_url, urls
    finally:
        for process in processes:
            stop(process)


async def _stream(store_url: str, account_id: str) -> list[tuple[int, int, str, Decimal]]:
    """(version, position, type, amount) of every event of the account, from the store."""
    engine = create_async_store_engine(store_url)
    try:
        events = await EventStore(engine).read_stream(account_id)
    finally:
        await engine.dispose()
    return [
        (e.version, e.position, e.type, Decimal(str(e.payload.get("amount", "0")))) for e in events
    ]


async def _client_run(
    api: httpx.AsyncClient, client: int, answers: list[tuple[str, Decimal, httpx.Response]]
) -> None:
    rng = random.Random(client)
    for n in range(COMMANDS_PER_CLIENT):
        kind = "withdraw" if rng.random() < 0.4 else "deposit"
        amount = Decimal(rng.randint(1, 6) if kind == "withdraw" else rng.randint(1, 3))
        body = {"amount": f"{amount}.00"}
        headers = {"Idempotency-Key": f"client-{client}-{n}"} if n % 3 == 0 else {}
        answer = await api.post("/accounts/hot/" + kind, json=body, headers=headers)
        answers.append((kind, amount, answer))
        if headers and answer.status_code == 200:  # a retry answers the same, appends nothing
            again = await api.post("/accounts/hot/" + kind, json=body, headers=headers)
            assert again.status_code == 200, again.text
            assert again.json() == answer.json()


async def test_many_clients_on_one_account_lose_nothing_double_nothing_overdraw_nothing(
    write_apis: tuple[str, list[str]],
) -> None:
    store_url, urls = write_apis
    limits = httpx.Limits(max_connections=CLIENTS)
    apis = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for url in urls]
    try:
        opened = await apis[0].post("/accounts", json={"owner": "Hot", "account_id": "hot"})
        assert opened.status_code == 201, opened.text
        seeded = await apis[1].post("/accounts/hot/deposit", json={"amount": str(OPENING)})
        assert seeded.status_code == 200, seeded.text
        answers: list[tuple[str, Decimal, httpx.Response]] = []
        await asyncio.gather(*(_client_run(apis[n % 2], n, answers) for n in range(CLIENTS)))
    finally:
        for api in apis:
            await api.aclose()

    assert all(answer.status_code < 500 for _, _, answer in answers)
    refused = [answer for _, _, answer in answers if answer.status_code != 200]
    assert all(answer.json()["error"] == "insufficient_funds" for answer in refused)
    acknowledged = [(k, a, answer.json()) for k, a, answer in answers if answer.status_code == 200]
    stream = await _stream(store_url, "hot")
    assert [version for version, *_ in stream] == list(range(1, len(stream) + 1))
    assert len(stream) == 2 + len(acknowledged)
    balance, running = Decimal(0), {}
    for version, position, kind, amount in stream[1:]:
        balance += amount if kind == "MoneyDeposited" else -amount
        assert balance >= 0, "a withdrawal overdrew the account"
        running[version] = (position, kind, amount, f"{balance:.2f}")
    kinds = {"deposit": "MoneyDeposited", "withdraw": "MoneyWithdrawn"}
    for kind, amount, body in acknowledged:
        assert running[body["version"]] == (body["position"], kinds[kind], amount, body["balance"])
    deposited = sum((a for k, a, _ in acknowledged if k == "deposit"), OPENING)
    withdrawn = sum((a for k, a, _ in acknowledged if k == "withdraw"), Decimal(0))
    assert balance == deposited - withdrawn


async def test_racing_expected_versions_over_two_processes_give_one_200_and_409s(
    write_apis: tuple[str, list[str]],
) -> None:
    store_url, urls = write_apis
    apis = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    try:
        await apis[0].post("/accounts", json={"owner": "Hot", "account_id": "hot"})
        body = {"amount": "1.00", "expected_version": 1}
        answers = await asyncio.gather(
            *(apis[n % 2].post("/accounts/hot/deposit", json=body) for n in range(12))
        )
    finally:
        for api in apis:
            await api.aclose()

    assert sorted(answer.status_code for answer in answers) == [200] + [409] * 11
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["error"] == "version_conflict"
            assert answer.json()["current_version"] == 2
    assert [version for version, *_ in await _stream(store_url, "hot")] == [1, 2]
