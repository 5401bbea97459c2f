"""Openings only, owners sealed vs in clear, in many short paired rounds:
`python -m bench.sealed_openings [--sqlite] [--rounds N] [--per-client N]`.

Benchmark 8 (personal_data.py) compares the medians of long rounds; on a shared machine their
spread hides a 10% effect. Here each round has 16 clients open `per-client` accounts each in
clear, then as many sealed (the order alternating), and the ratio is taken per round, so load
from other processes mostly hits both sides of a pair alike. Prints the median, quartiles and range of the
per-round ratios (time per opening sealed / in clear), and this process's CPU time per opening
(client plus, on SQLite, the database itself).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

from bench.environment import bench_environment
from kernel.master_key import MasterKey, new_master_key_text
from write_side.command_bus import CommandBus
from write_side.commands import OpenAccount
from write_side.personal_data import PersonalData
from write_side.publisher import NoPublisher
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.migrate import upgrade_to_head
from write_side.store.personal_keys import PersonalKeys

CLIENTS = 16


async def _openings(bus: CommandBus, per_client: int) -> tuple[float, float]:
    """Openings per second, and CPU microseconds of this process per opening."""
    run = uuid.uuid4().hex[:8]

    async def client(c: int) -> None:
        for n in range(per_client):
            await bus.execute(OpenAccount(f"Owner {c}-{n}", account_id=f"so-{run}-{c}-{n}"))

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(c) for c in range(CLIENTS)))
    count = CLIENTS * per_client
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) / count * 1e6


async def _measure(url: str, rounds: int, per_client: int) -> None:
    engine = create_async_store_engine(url, pool_size=CLIENTS)
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
    ratios: list[float] = []
    cpu: dict[bool, list[float]] = {False: [], True: []}
    try:
        await _openings(buses[False], 5)  # warm the pool and the code paths
        await _openings(buses[True], 5)
        for n in range(rounds):
            rate: dict[bool, float] = {}
            for sealed in (False, True) if n % 2 == 0 else (True, False):
                rate[sealed], cpu_us = await _openings(buses[sealed], per_client)
                cpu[sealed].append(cpu_us)
            ratios.append(rate[False] / rate[True])
    finally:
        await engine.dispose()
    ratios.sort()
    quarter = len(ratios) // 4
    print(
        f"{engine.dialect.name}: time per opening sealed / in clear: median "
        f"{statistics.median(ratios):.3f}, quartiles {ratios[quarter]:.3f}-"
        f"{ratios[-1 - quarter]:.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f} ({rounds} paired "
        f"rounds of {CLIENTS * per_client} openings each side)"
    )
    clear_us, sealed_us = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(
        f"{engine.dialect.name}: CPU of this process per opening: in clear {clear_us:.0f} us, "
        f"sealed {sealed_us:.0f} us ({sealed_us / clear_us:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sealed_openings", description=__doc__)
    parser.add_argument("--sqlite", action="store_true", help="a new SQLite file, not PostgreSQL")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-client", type=int, default=25)
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            upgrade_to_head(url)
            asyncio.run(_measure(url, args.rounds, args.per_client))
    else:
        with bench_environment() as env:
            asyncio.run(_measure(env.database_url, args.rounds, args.per_client))


if __name__ == "__main__":
    main()
