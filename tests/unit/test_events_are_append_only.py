"""A guard: no code outside the tests updates or deletes stored events.

It reads the source, so it also covers code paths no test exercises (CLI, projectors, migrations'
upgrade steps). Dropping the table in a migration's downgrade is not an UPDATE or DELETE of events.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ["app", "write_side", "read_side", "projectors"]

MUTATIONS_OF_EVENTS = re.compile(
    r"""
    \bUPDATE\s+(?:ONLY\s+)?["`]?events["`]?\b       # SQL: UPDATE events / UPDATE ONLY events
    | \bDELETE\s+FROM\s+(?:ONLY\s+)?["`]?events["`]?\b  # SQL: DELETE FROM events
    | \bTRUNCATE\s+(?:TABLE\s+)?["`]?events["`]?\b  # SQL: TRUNCATE events
    | \bevents\s*\.\s*(?:update|delete)\s*\(         # Core: events.update() / events.delete()
    | \b(?:update|delete)\s*\(\s*(?:schema\.)?events\b  # Core: sa.update(events) / delete(events)
    """,
    re.IGNORECASE | re.VERBOSE,
)


BACKFILLS = {
    # Fills the new `hash` column of the events already stored, once: it adds a value that did
    # not exist and changes nothing an event said (see the migration's docstring).
    "write_side/migrations/versions/0006_hash_chain.py": 2,
}
"""Files allowed to UPDATE events, with how many lines that do; any other mutation fails."""


def source_files() -> list[Path]:
    return [
        path
        for package in SOURCE_PACKAGES
        if (ROOT / package).is_dir()
        for path in sorted((ROOT / package).rglob("*"))
        if path.suffix in {".py", ".sql", ".mako"}
    ]


def test_the_guard_recognises_every_way_of_mutating_events() -> None:
    mutations = [
        "UPDATE events SET payload = '{}'",
        'update "events" set type = 1',
        "DELETE FROM events WHERE position = 1",
        "truncate table events",
        "conn.execute(events.update().values(type='x'))",
        "conn.execute(events.delete())",
        "sa.update(events).where(...)",
        "delete(schema.events)",
    ]
    harmless = [
        "DELETE FROM snapshots WHERE stream_id = :s",
        "UPDATE projection_checkpoints SET position = 3",
        "snapshots.update()",
        "op.drop_table('events')",
        "await store.read_after(position)",
    ]

    assert all(MUTATIONS_OF_EVENTS.search(text) for text in mutations)
    assert not any(MUTATIONS_OF_EVENTS.search(text) for text in harmless)


def test_no_source_file_updates_or_deletes_stored_events() -> None:
    files = source_files()
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if MUTATIONS_OF_EVENTS.search(line)
    ]

    allowed = [o for o in offenders if o.split(":")[0] in BACKFILLS]
    counted = {f: sum(o.startswith(f + ":") for o in allowed) for f in BACKFILLS}

    assert files, "the guard found no source files to read"
    assert [o for o in offenders if o not in allowed] == []
    assert counted == BACKFILLS
    assert all("UPDATE events SET hash" in o for o in allowed)
