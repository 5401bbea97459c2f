"""`bank demo`'s traffic includes transfers, each recorded on both sides, and reversals of some."""

from __future__ import annotations

from collections import Counter

from tests.support import make_settings
from write_side.demo import run_demo
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore


async def test_demo_traffic_sends_transfers_and_counts_both_sides_as_events(
    sqlite_url: str,
) -> None:
    settings = make_settings(database_url=sqlite_url)

    report = await run_demo(settings, accounts=6, events=300, concurrency=1, seed=7)

    engine = create_async_store_engine(sqlite_url)
    try:
        recorded = await EventStore(engine).read_after(0, limit=1000)
    finally:
        await engine.dispose()
    kinds = Counter(e.type for e in recorded)
    assert report.events == len(recorded) == 300
    assert kinds["TransferSent"] == kinds["TransferReceived"] > 0
    reversals = [e for e in recorded if e.type == "TransferSent" and "reversal_of" in e.payload]
    originals = {e.payload["reversal_of"] for e in reversals}
    assert len(originals) == len(reversals) > 0  # each reversed once
