"""Many clients transferring between a few accounts at once, on PostgreSQL: no deadlock, no money
lost or created, no account below minus its limit, every acknowledged transfer once on each side."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal

import httpx
import pytest

from tests.integration.write_api_client import racing_client, store_of, write_api
from write_side.domain.account import BankAccount

pytestmark = pytest.mark.postgres

ACCOUNTS = {"a": "100.00", "b": "100.00", "c": "0.00", "d": "50.00"}
LIMITS = {"a": "0", "b": "25.00", "c": "40.00", "d": "0"}
CLIENTS = 20
TRANSFERS_EACH = 20


async def _send_transfers(racing: httpx.AsyncClient, seed: int) -> list[httpx.Response]:
    rng = random.Random(seed)
    responses = []
    for n in range(TRANSFERS_EACH):
        source, target = rng.sample(sorted(ACCOUNTS), 2)
        body = {
            "from_account": source,
            "to_account": target,
            "amount": f"{rng.randint(1, 6000) / 100:.2f}",
            "transfer_id": f"t-{seed}-{n}",
        }
        responses.append(await racing.post("/transfers", json=body))
    return responses


async def test_racing_transfers_never_deadlock_lose_money_or_overdraw(pg_url: str) -> None:
    async with write_api(pg_url, command_deadline_ms=60_000) as client:
        for account_id, balance in ACCOUNTS.items():
            await client.post("/accounts", json={"owner": "Ada", "account_id": account_id})
            if Decimal(balance):
                await client.post(f"/accounts/{account_id}/deposit", json={"amount": balance})
            limit = {"overdraft_limit": LIMITS[account_id]}
            await client.post(f"/accounts/{account_id}/overdraft-limit", json=limit)

        async with racing_client(client) as racing, asyncio.timeout(120):
            batches = await asyncio.gather(*(_send_transfers(racing, s) for s in range(CLIENTS)))

        responses = [r for batch in batches for r in batch]
        statuses = Counter(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 500]
        assert {r.json()["error"] for r in responses if r.status_code == 409} <= {
            "insufficient_funds"
        }
        assert statuses[201] > 0

        store = store_of(client)
        recorded = await store.read_after(0, limit=100_000)
        sides = Counter(
            (e.type, e.payload["transfer_id"]) for e in recorded if "Transfer" in e.type
        )
        acknowledged = {r.json()["transfer_id"] for r in responses if r.status_code == 201}
        assert {tid for (_, tid) in sides} == acknowledged
        assert all(count == 1 for count in sides.values())
        assert sum(1 for (kind, _) in sides if kind == "TransferSent") == len(acknowledged)

        total = Decimal(0)
        for account_id in ACCOUNTS:
            account = BankAccount(account_id)
            for event in (e for e in recorded if e.stream_id == account_id):
                account.apply(event.to_domain())
                assert account.balance >= -account.overdraft_limit, (account_id, event)
            total += account.balance
        assert total == sum(Decimal(b) for b in ACCOUNTS.values())
