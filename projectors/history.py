"""Time indexes of the read models: each account's states (balances) and statement versions
(statements) scored by when their event was recorded, so a reader finds "as of T" with one
O(log n) range query.

A score is the event's recorded time in epoch microseconds, clamped so that it never goes below
the account's previous score (`history_score`): the store's clock can step back, and the set must
still order an account's events by version. The clamp needs each account's latest score, read
once per batch; the members and scores are then a function of the events alone, so a replayed
batch writes the same members again (and the folds skip it anyway). A rebuild's scratch generation
has one writer, which keeps each account's latest score in memory instead (`stage_remembered`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kernel.events import RecordedEvent
from kernel.read_model_layout import (
    AccountBalance,
    GenerationKeys,
    StatementEntry,
    history_member,
    history_score,
    statement_times_member,
)
from projectors.scripted import ScriptedWrites

Stamp = tuple[str, str, datetime]
"""(account id, member, recorded at) of one event, in the account's version order."""


def scored(stamps: Iterable[Stamp], latest: Mapping[str, int | None]) -> dict[str, dict[str, int]]:
    """The members to add to each account's time index, with their clamped scores; `latest` is
    each account's highest score before the batch."""
    last: dict[str, int] = {}
    added: dict[str, dict[str, int]] = {}
    for account_id, member, recorded_at in stamps:
        previous = last[account_id] if account_id in last else latest.get(account_id)
        score = history_score(recorded_at, previous)
        last[account_id] = score
        added.setdefault(account_id, {})[member] = score
    return added


def newest(added: Mapping[str, dict[str, int]]) -> dict[str, int]:
    """Each account's highest score among `added` (`scored`'s answer): the last one given."""
    return {account_id: next(reversed(members.values())) for account_id, members in added.items()}


async def latest_scores(
    reader: Redis, account_ids: Sequence[str], key_of: Callable[[str], str]
) -> dict[str, int | None]:
    """The highest score in each account's index (None when empty), in one round trip."""
    async with reader.pipeline(transaction=False) as pipe:
        for account_id in account_ids:
            pipe.zrange(key_of(account_id), -1, -1, withscores=True)
        found: list[list[tuple[str, float]]] = await pipe.execute()
    return {
        account_id: int(top[0][1]) if top else None
        for account_id, top in zip(account_ids, found, strict=True)
    }


def _queue(
    tx: Pipeline | ScriptedWrites, key_of: Callable[[str], str], added: dict[str, dict[str, int]]
) -> None:
    for account_id, members in added.items():
        tx.zadd(key_of(account_id), members)


async def _stage(
    reader: Redis, tx: Pipeline, key_of: Callable[[str], str], stamps: list[Stamp]
) -> None:
    if not stamps:
        return
    accounts = list(dict.fromkeys(account_id for account_id, _, _ in stamps))
    latest = await latest_scores(reader, accounts, key_of)
    _queue(tx, key_of, scored(stamps, latest))


def stage_remembered(
    tx: Pipeline | ScriptedWrites,
    key_of: Callable[[str], str],
    stamps: list[Stamp],
    latest: Mapping[str, int],
) -> dict[str, int]:
    """Queue `stamps` like the staging below, clamped to `latest` (each account's highest score,
    kept in memory by the index's one writer) instead of reading it; returns the accounts' new
    highest scores (`latest` itself is left as it is until the batch commits)."""
    added = scored(stamps, latest)
    _queue(tx, key_of, added)
    return newest(added)


def balance_stamps(
    states: Sequence[tuple[str, AccountBalance]], events: Sequence[RecordedEvent]
) -> list[Stamp]:
    """The history member of each account state after an applied event (`states`, in position
    order), stamped with that event's recorded time."""
    recorded = {event.position: event.recorded_at for event in events}
    return [(aid, history_member(state), recorded[state.position]) for aid, state in states]


def statement_stamps(
    entries: Mapping[str, Sequence[StatementEntry]], events: Sequence[RecordedEvent]
) -> list[Stamp]:
    """The time-index member of each new statement entry (`entries`, in version order per
    account), stamped with its event's recorded time."""
    recorded = {(event.stream_id, event.version): event.recorded_at for event in events}
    return [
        (aid, statement_times_member(entry.version), recorded[(aid, entry.version)])
        for aid, account_entries in entries.items()
        for entry in account_entries
    ]


async def stage_balance_history(
    reader: Redis,
    tx: Pipeline,
    keys: GenerationKeys,
    states: Sequence[tuple[str, AccountBalance]],
    events: Sequence[RecordedEvent],
) -> None:
    """Queue the account state after each applied event (`states`, in position order)."""
    await _stage(reader, tx, keys.history, balance_stamps(states, events))


async def stage_statement_times(
    reader: Redis,
    tx: Pipeline,
    keys: GenerationKeys,
    entries: Mapping[str, Sequence[StatementEntry]],
    events: Sequence[RecordedEvent],
) -> None:
    """Queue the time of each new statement entry (`entries`, in version order per account)."""
    await _stage(reader, tx, keys.statement_times, statement_stamps(entries, events))
