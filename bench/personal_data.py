"""Benchmark 8: the command path with personal data sealed (BANK_MASTER_KEY set) vs in clear.

In-process, through the real CommandBus and repository: concurrent clients open accounts (the
only command that seals: a key is made and wrapped, the owner encrypted) and then deposit into them
(loading needs no key: the aggregate keeps the owner sealed). Rounds alternate clear and sealed (in
both orders) on fresh account ids, and the median throughput of each is compared.

In the suite it runs on PostgreSQL; on its own, `python -m bench.personal_data [--sqlite]
[--quick]` prints the same figures for either backend (SQLite: a new file, migrated to head).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

from bench.config import BenchConfig
from bench.environment import BenchEnv, bench_environment
from bench.results import Figure, Outcome
from kernel.master_key import MasterKey, new_master_key_text
from write_side.command_bus import CommandBus
from write_side.commands import Deposit, OpenAccount
from write_side.personal_data import PersonalData
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.migrate import upgrade_to_head
from write_side.store.personal_keys import PersonalKeys

NAME = "personal_data"
TITLE = "8. command path with personal data sealed"
TARGET_RATIO = 1.10
CLIENTS = 16
DEPOSITS_PER_ACCOUNT = 9


async def _rate(
    clients: int, per_client: int, command: Callable[[int, int], Awaitable[object]]
) -> float:
    async def client(c: int) -> None:
        for n in range(per_client):
            await command(c, n)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return clients * per_client / (time.perf_counter() - started)


async def _round(bus: CommandBus, accounts_per_client: int) -> tuple[float, float]:
    """Opens per second, then deposits per second (into the accounts just opened)."""
    run = uuid.uuid4().hex[:8]

    def account(c: int, n: int) -> str:
        return f"pd-{run}-{c}-{n}"

    async def open_one(c: int, n: int) -> object:
        return await bus.execute(OpenAccount(f"Owner {c}-{n} of {run}", account_id=account(c, n)))

    async def deposit(c: int, n: int) -> object:
        return await bus.execute(Deposit(account(c, n % accounts_per_client), Decimal("1.25")))

    opens = await _rate(CLIENTS, accounts_per_client, open_one)
    deposits = await _rate(CLIENTS, accounts_per_client * DEPOSITS_PER_ACCOUNT, deposit)
    return opens, deposits


async def _measure(database_url: str, config: BenchConfig, outcome: Outcome) -> None:
    accounts = config.count(100, 40, 4)
    rounds = config.count(5, 3, 1)
    engine = create_async_store_engine(database_url, pool_size=CLIENTS)
    store = EventStore(engine)
    master = MasterKey(new_master_key_text())
    buses = {
        sealed: CommandBus(
            AccountRepository(
                store, 100, PersonalData(PersonalKeys(engine, master if sealed else None))
            ),
            NoPublisher(),
            deadline_s=30,
        )
        for sealed in (False, True)
    }
    rates: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    try:
        await _round(buses[False], 2)  # warm the pool and the code paths
        await _round(buses[True], 2)
        for n in range(rounds):
            for sealed in (False, True) if n % 2 == 0 else (True, False):
                rates[sealed].append(await _round(buses[sealed], accounts))
    finally:
        await engine.dispose()
    t = TITLE
    clear = [statistics.median(r[i] for r in rates[False]) for i in (0, 1)]
    seal = [statistics.median(r[i] for r in rates[True]) for i in (0, 1)]
    # An account's life here: one opening, then DEPOSITS_PER_ACCOUNT deposits.
    mix = [
        (1 + DEPOSITS_PER_ACCOUNT) / (1 / rate[0] + DEPOSITS_PER_ACCOUNT / rate[1])
        for rate in (clear, seal)
    ]
    for what, clear_rate, sealed_rate in (
        ("open account", clear[0], seal[0]),
        ("deposit", clear[1], seal[1]),
        (f"mix: 1 opening + {DEPOSITS_PER_ACCOUNT} deposits", mix[0], mix[1]),
    ):
        cost = clear_rate / sealed_rate  # time per command, sealed over clear
        outcome.figures += [
            Figure(t, f"{what}, owners in clear (baseline)", clear_rate, "commands/s"),
            Figure(
                t, f"{what}, owners sealed: time per command", sealed_rate, "commands/s",
                cost, "in clear", f"≤ {TARGET_RATIO}", cost <= TARGET_RATIO,
            ),
        ]  # fmt: skip
    backend = engine.dialect.name
    outcome.notes.append(
        f"{TITLE}: {CLIENTS} concurrent in-process clients on {backend}, {rounds} alternating "
        f"rounds of {CLIENTS * accounts} opens then {CLIENTS * accounts * DEPOSITS_PER_ACCOUNT} "
        "deposits each; medians. A ratio is time per command sealed / in clear."
    )


def run(env: BenchEnv, config: BenchConfig) -> Outcome:
    outcome = Outcome()
    asyncio.run(_measure(env.database_url, config, outcome))
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.personal_data", description=TITLE)
    parser.add_argument("--sqlite", action="store_true", help="a new SQLite file, not PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller rounds")
    args = parser.parse_args()
    config = BenchConfig(quick=args.quick)
    outcome = Outcome()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade_to_head(url)
            asyncio.run(_measure(url, config, outcome))
    else:
        with bench_environment() as env:
            asyncio.run(_measure(env.database_url, config, outcome))
    for figure in outcome.figures:
        ratio = "" if figure.ratio is None else f"  ratio {figure.ratio:.3f}"
        print(f"{figure.measure}: {figure.value:,.0f} {figure.unit}{ratio}")
    print(*outcome.notes, sep="\n")


if __name__ == "__main__":
    main()
