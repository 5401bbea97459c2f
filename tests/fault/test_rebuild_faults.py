"""`bank projections rebuild --all` SIGKILLed part-way through its replay.

A rebuild fills a new generation beside the live one and only then switches the live pointer, so a
rebuild killed before the switch must leave the live read models exactly as they were (byte for
byte), and the next rebuild must clear the half-built leftover, replay everything and switch.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
import redis

from kernel.read_model_layout import BALANCES, PROJECTION_NAMES, STATEMENTS, ReadModelKeys
from kernel.settings import Settings
from projectors.catch_up import run_catch_up
from tests.fault.support import assert_projections_equal_a_replay, bank, kill, wait_for_projections
from tests.support import (
    BANK,
    checkpoints,
    env_for,
    stop,
    wait_until,
    write_traffic,
)

pytest_plugins = ["tests.fixtures"]  # settings, rdb

pytestmark = pytest.mark.fault

SLOW_BATCH = 5
"""Events per batch of the rebuild that gets killed: small, so that its replay takes seconds."""
KILL_AFTER = 2_000
"""Kill once the new generation holds this many positions: well into the replay, far from its end."""


def _generations(client: redis.Redis, prefix: str, projection: str) -> set[int]:
    keys = ReadModelKeys(prefix)
    found = (
        keys.generation_of_key(k) for k in client.scan_iter(keys.generations_pattern(projection))
    )
    return {generation for generation in found if generation is not None}


def _live_dump(client: redis.Redis, prefix: str) -> dict[str, bytes | None]:
    """Every key of every live generation, serialised by Redis itself (DUMP): equal dumps mean
    untouched content, down to the checkpoints and their timestamps."""
    keys = ReadModelKeys(prefix)
    dump: dict[str, bytes | None] = {}
    for name in PROJECTION_NAMES:
        live = int(client.get(keys.live(name)) or 1)
        pattern = keys.generation(name, live).base + ":*"
        for key in client.scan_iter(match=pattern, count=1000):
            dump[key] = client.dump(key)  # type: ignore[assignment]  # bytes, even when decoding
    return dump


def test_a_rebuild_killed_midway_leaves_the_live_models_untouched_and_the_next_one_succeeds(
    settings: Settings, rdb: redis.Redis, tmp_path: Path
) -> None:
    prefix, keys = settings.redis.prefix, ReadModelKeys(settings.redis.prefix)
    head = write_traffic(
        settings.store.database_url, accounts=120, events_per_account=100, chunk=25
    )
    assert head >= 10_000
    asyncio.run(run_catch_up(settings, wait_for_locks=True))
    assert wait_for_projections(rdb, settings, timeout=1) == head
    before = _live_dump(rdb, prefix)

    args = ["projections", "rebuild", "--all", "--batch-size", str(SLOW_BATCH)]
    with (tmp_path / "rebuild.log").open("wb") as log:
        rebuild = subprocess.Popen([*BANK, *args], env=env_for(settings), stdout=log, stderr=log)
    try:
        filling = keys.generation(BALANCES, 2).meta
        wait_until(
            lambda: int(rdb.hget(filling, "position") or 0) >= KILL_AFTER,
            timeout=30,
            what="the rebuild to be well under way",
            every=0.005,
        )
        kill(rebuild)
    finally:
        stop(rebuild)

    assert rebuild.returncode == -9
    killed_at = int(rdb.hget(filling, "position") or 0)
    assert KILL_AFTER <= killed_at < head, "the rebuild must have been killed part-way"
    # Untouched: same pointers, same keys, same bytes. The half-built generation is left over.
    assert rdb.get(keys.live(BALANCES)) == rdb.get(keys.live(STATEMENTS)) == "1"
    assert _live_dump(rdb, prefix) == before
    # One read of the store feeds both projections (projectors/one_pass.py): both were filling.
    assert _generations(rdb, prefix, BALANCES) == _generations(rdb, prefix, STATEMENTS) == {1, 2}
    assert checkpoints(rdb, prefix) == {BALANCES: head, STATEMENTS: head}

    # The dead run's rebuild lock (renewed every batch) keeps a second rebuild out until it
    # expires, within its TTL; then the next rebuild runs.
    refused = bank(settings, "projections", "rebuild", "--all")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "already running" in refused.stderr
    assert _live_dump(rdb, prefix) == before
    wait_until(lambda: not rdb.exists(keys.rebuild_lock(BALANCES)), 15, "the dead run's lock")
    again = bank(settings, "projections", "rebuild", "--all")

    assert again.returncode == 0, again.stdout + again.stderr
    # Every event replayed from 0: the leftovers were deleted, not continued. Generation numbers
    # are never reused: each projection's leftover 2 is deleted and 3 is the new one.
    for name, new in ((BALANCES, 3), (STATEMENTS, 3)):
        assert re.search(
            rf"^{name}: rebuilt from {head:,} events; generation 1 -> {new} is live",
            again.stdout,
            re.M,
        ), again.stdout
        assert rdb.get(keys.live(name)) == str(new)
        assert _generations(rdb, prefix, name) == {new}, "old and leftover keys must be gone"
    assert wait_for_projections(rdb, settings, timeout=1) == head
    assert_projections_equal_a_replay(rdb, settings)
