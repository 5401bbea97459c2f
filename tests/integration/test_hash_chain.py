"""The hash chain: Python's canonical encoding is PostgreSQL's, both backends chain every append,
and verification names the first position that was tampered with and why."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from kernel.chain import GENESIS, canonical_json, canonical_json_text, event_hash
from kernel.events import MoneyDeposited, NewEvent
from tests.integration.audit_support import execute, fill_store
from write_side.audit.verify import Digest, verify_chain
from write_side.store.database import create_async_store_engine, create_sync_store_engine
from write_side.store.event_store import EventStore

JSON_VALUES: list[Any] = [
    {},
    [],
    {"owner": "Zoë Ångström 山田 😀", "currency": "EUR"},
    {"amount": "100.50", "reference": None, "ok": True, "no": False},
    {"bb": 1, "a": 2, "ccc": {"z": [1, "x", {"é": "e", "e": "é"}], "y": []}, "": 0},
    {"escapes": 'quote " back \\ slash / tab \t nl \n cr \r bell \x07 del \x7f \u2028 \x1f'},
    {"n": [0, -7, 12345678901234567890, Decimal("1.50"), Decimal("-0.0"), Decimal("1E+2")]},
    {"n": [Decimal("1.5e-3"), Decimal("2.50E1"), 0.25, -1.0]},
    {"dup": "keys sorted by byte length: ü before ab", "ü": 1, "ab": 2, "b": 3},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=range(len(JSON_VALUES)))
def test_python_writes_json_exactly_as_postgresql_prints_jsonb(pg_url: str, value: Any) -> None:
    engine = create_sync_store_engine(pg_url)
    text = canonical_json(value)
    try:
        with engine.connect() as conn:
            printed = conn.execute(sa.text("SELECT CAST(:j AS jsonb)::text"), {"j": text}).scalar()
    finally:
        engine.dispose()

    assert printed == text
    assert canonical_json_text(printed) == text


def test_python_and_postgresql_hash_an_event_identically(pg_url: str) -> None:
    moment = datetime(2026, 11, 30, 6, 17, 7, 123456, tzinfo=UTC)
    event_id = uuid.uuid4()
    payload = {"owner": "Zoë 山田", "nested": {"amount": "1.00", "list": [1, Decimal("2.50")]}}
    metadata = {"tx": "abc"}
    engine = create_sync_store_engine(pg_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET TIME ZONE 'America/New_York'"))  # the hash is in UTC
            in_sql = conn.execute(
                sa.text(
                    "SELECT bank_event_hash(:previous, 42, CAST(:event_id AS uuid), 'acc-1', 7,"
                    " 'AccountOpened', CAST(2 AS smallint), :moment, CAST(:metadata AS jsonb),"
                    " CAST(:payload AS jsonb))"
                ),
                {
                    "previous": "ab" * 32,
                    "event_id": str(event_id),
                    "moment": moment,
                    "metadata": canonical_json(metadata),
                    "payload": canonical_json(payload),
                },
            ).scalar()
    finally:
        engine.dispose()

    in_python = event_hash(
        "ab" * 32,
        42,
        event_id,
        "acc-1",
        7,
        "AccountOpened",
        2,
        moment,
        canonical_json(metadata),
        canonical_json(payload),
    )
    assert in_sql == in_python


def _verify(url: str, digest: Digest | None = None) -> Any:
    engine = create_sync_store_engine(url)
    try:
        return verify_chain(engine, digest)
    finally:
        engine.dispose()


def _hashes(url: str) -> list[tuple[int, str]]:
    engine = create_sync_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT position, hash FROM events ORDER BY position"))
            return [(p, h) for p, h in rows]
    finally:
        engine.dispose()


def test_every_append_extends_the_chain_on_both_backends(store_url: str) -> None:
    head = fill_store(store_url)

    verdict = _verify(store_url)

    hashes = _hashes(store_url)
    assert [p for p, _ in hashes] == list(range(1, head + 1))
    assert all(len(h) == 64 for _, h in hashes)
    assert len({h for _, h in hashes}) == head
    assert verdict.ok, verdict.reason
    assert verdict.events == head
    assert verdict.head == Digest(head, hashes[-1][1])


def test_concurrent_appends_still_form_one_chain(store_url: str) -> None:
    async def run() -> None:
        engine = create_async_store_engine(store_url)
        try:
            store = EventStore(engine)

            async def writer(n: int) -> None:
                for version in range(10):
                    event = NewEvent.from_domain(MoneyDeposited(Decimal("1.00")))
                    await store.append(f"acc-{n}", [event], version)

            await asyncio.gather(*(writer(n) for n in range(8)))
        finally:
            await engine.dispose()

    asyncio.run(run())

    verdict = _verify(store_url)
    assert verdict.ok, verdict.reason
    assert verdict.events == 80


def test_an_empty_store_verifies_with_the_genesis_head(store_url: str) -> None:
    verdict = _verify(store_url)

    assert verdict.ok
    assert (verdict.events, verdict.head) == (0, Digest(0, GENESIS))


def test_a_changed_payload_is_named_by_its_position(store_url: str) -> None:
    fill_store(store_url)
    execute(store_url, """UPDATE events SET payload = '{"amount": "999.99"}' WHERE position = 3""")

    verdict = _verify(store_url)

    assert (verdict.failed_at, verdict.events) == (3, 2)
    assert verdict.reason.startswith("payload changed")


def test_a_deleted_row_is_named_by_its_position(store_url: str) -> None:
    fill_store(store_url)
    execute(store_url, "DELETE FROM events WHERE position = 4")

    verdict = _verify(store_url)

    assert verdict.failed_at == 4
    assert verdict.reason.startswith("row missing")


def test_two_swapped_positions_are_named_as_broken_order(store_url: str) -> None:
    fill_store(store_url)
    execute(
        store_url,
        "UPDATE events SET position = -2 WHERE position = 2",
        "UPDATE events SET position = 2 WHERE position = 5",
        "UPDATE events SET position = 5 WHERE position = -2",
    )

    verdict = _verify(store_url)

    assert verdict.failed_at == 2
    assert verdict.reason == ("order broken: the event now at position 5 belongs at position 2")


def test_a_kept_digest_passes_and_a_wrong_one_fails(store_url: str) -> None:
    fill_store(store_url)
    kept = Digest(*_hashes(store_url)[3])

    assert _verify(store_url, kept).ok
    wrong = _verify(store_url, Digest(kept.position, "0" * 64))
    assert wrong.failed_at == kept.position
    assert wrong.reason.startswith("digest mismatch")


def test_a_digest_catches_events_deleted_at_the_end(store_url: str) -> None:
    head = fill_store(store_url)
    kept = Digest(*_hashes(store_url)[-1])
    execute(store_url, "DELETE FROM events WHERE position = (SELECT max(position) FROM events)")

    assert _verify(store_url).ok  # the chain alone cannot see a shortened tail
    verdict = _verify(store_url, kept)
    assert verdict.failed_at == head
    assert "deleted" in verdict.reason


def test_a_position_lost_to_a_failed_append_is_not_a_missing_row(pg_url: str) -> None:
    """PostgreSQL's sequence does not roll back: a refused append can leave a gap in positions,
    which the chain (built over the stored order) carries without complaint."""

    async def run() -> None:
        engine = create_async_store_engine(pg_url)
        try:
            store = EventStore(engine)
            first = NewEvent.from_domain(MoneyDeposited(Decimal("1.00")))
            await store.append("acc-1", [first], 0)
            with pytest.raises(sa.exc.IntegrityError):  # the same event id again: rolled back
                await store.append("acc-2", [first], 0)
            await store.append("acc-2", [NewEvent.from_domain(MoneyDeposited(Decimal("2.00")))], 0)
        finally:
            await engine.dispose()

    asyncio.run(run())

    assert [p for p, _ in _hashes(pg_url)] == [1, 3]
    assert _verify(pg_url).ok
