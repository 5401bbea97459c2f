"""Reading the store in position order for the chain, a page at a time, so memory stays flat.

Payload and metadata are read as their stored JSON text (cast to text) and put in canonical form
(kernel/chain.py): the hash covers that form, whichever backend stored it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from kernel.chain import canonical_json_text, event_hash
from write_side.domain.hold import resolution_id
from write_side.store.queries import as_utc
from write_side.store.schema import events, personal_keys, transfers

PAGE = 1000


@dataclass(frozen=True, slots=True)
class TransferRow:
    """The transfers table's row an event claimed (not part of the chain): a TransferSent's
    transfer id, or a hold's id (on its "from" HoldPlaced) and its resolution's (on its "from"
    HoldCaptured, HoldVoided or HoldExpired; write_side/hold_resolution.py)."""

    transfer_id: str
    fingerprint: str
    result_json: str
    last_position: int
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class PersonalKeyRow:
    """The personal_keys row of an account, carried on its AccountOpened (not part of the chain):
    the key wrapped by the master key (None once forgotten: a tombstone)."""

    wrapped_key: bytes | None
    created_at: datetime
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChainRow:
    position: int
    event_id: uuid.UUID
    stream_id: str
    version: int
    type: str
    schema_version: int
    recorded_at: datetime
    metadata_json: str
    payload_json: str
    hash: str | None
    transfer: TransferRow | None = None
    personal_key: PersonalKeyRow | None = None

    def link(self, previous: str) -> str:
        """This event's hash if it follows `previous` in the chain."""
        return event_hash(
            previous,
            self.position,
            self.event_id,
            self.stream_id,
            self.version,
            self.type,
            self.schema_version,
            self.recorded_at,
            self.metadata_json,
            self.payload_json,
        )

    def at(self, position: int) -> ChainRow:
        return replace(self, position=position)


def _statement(with_transfers: bool) -> sa.Select[Any]:
    """One page of events (keyset: after a position, by the primary key), and with
    `with_transfers` each TransferSent's transfers row, joined to that page only (joining first
    would make every page scan the rest of the store)."""
    page = (
        sa.select(
            events.c.position,
            events.c.event_id,
            events.c.stream_id,
            events.c.version,
            events.c.type,
            events.c.schema_version,
            events.c.recorded_at,
            sa.cast(events.c.metadata, sa.Text).label("metadata"),
            sa.cast(events.c.payload, sa.Text).label("payload"),
            events.c.hash,
            events.c.payload["transfer_id"].as_string().label("transfer_id"),
        )
        .where(events.c.position > sa.bindparam("after"))
        .order_by(events.c.position)
        .limit(sa.bindparam("page"))
        .subquery()
    )
    columns = [c for c in page.c if c.name != "transfer_id"]
    if not with_transfers:
        return sa.select(*columns).order_by(page.c.position)
    claimed = sa.and_(page.c.type == "TransferSent", transfers.c.transfer_id == page.c.transfer_id)
    keyed = sa.and_(page.c.type == "AccountOpened", personal_keys.c.stream_id == page.c.stream_id)
    return (
        sa.select(
            *columns,
            transfers.c.transfer_id,
            transfers.c.fingerprint,
            sa.cast(transfers.c.result, sa.Text),
            transfers.c.last_position,
            transfers.c.recorded_at,
            personal_keys.c.stream_id,
            personal_keys.c.wrapped_key,
            personal_keys.c.created_at,
            personal_keys.c.erased_at,
        )
        .select_from(page.outerjoin(transfers, claimed).outerjoin(personal_keys, keyed))
        .order_by(page.c.position)
    )


def _row(raw: Any) -> ChainRow:
    transfer = personal_key = None
    if len(raw) > 10 and raw[10] is not None:
        transfer = TransferRow(
            raw[10], raw[11], canonical_json_text(raw[12]), raw[13], as_utc(raw[14])
        )
    if len(raw) > 15 and raw[15] is not None:
        erased_at = as_utc(raw[18]) if raw[18] is not None else None
        personal_key = PersonalKeyRow(raw[16], as_utc(raw[17]), erased_at)
    return ChainRow(
        position=raw[0],
        event_id=raw[1],
        stream_id=raw[2],
        version=raw[3],
        type=raw[4],
        schema_version=raw[5],
        recorded_at=as_utc(raw[6]),
        metadata_json=canonical_json_text(raw[7]),
        payload_json=canonical_json_text(raw[8]),
        hash=raw[9],
        transfer=transfer,
        personal_key=personal_key,
    )


_RESOLUTIONS = ("HoldCaptured", "HoldVoided", "HoldExpired")


def _hold_claim(row: ChainRow) -> str | None:
    """The transfers row a hold event's "from" side claimed, if it is one."""
    if row.type != "HoldPlaced" and row.type not in _RESOLUTIONS:
        return None
    payload = json.loads(row.payload_json)
    if payload.get("side") != "from":
        return None
    hold_id = str(payload["hold_id"])
    return hold_id if row.type == "HoldPlaced" else resolution_id(hold_id)


def _with_hold_claims(conn: sa.Connection, page: list[ChainRow]) -> list[ChainRow]:
    """The page with each hold's claims on the events that made them. A capture's TransferSent
    (transfer id = hold id) joined the hold's own claim: that one rides on the HoldPlaced."""
    wanted = {claim: index for index, row in enumerate(page) if (claim := _hold_claim(row))}
    page = [
        replace(row, transfer=None)
        if row.transfer is not None and "hold_id" in json.loads(row.transfer.result_json)
        else row
        for row in page
    ]
    if not wanted:
        return page
    query = sa.select(
        transfers.c.transfer_id,
        transfers.c.fingerprint,
        sa.cast(transfers.c.result, sa.Text),
        transfers.c.last_position,
        transfers.c.recorded_at,
    ).where(transfers.c.transfer_id.in_(wanted))
    for claim_id, fingerprint, result, last_position, recorded_at in conn.execute(query):
        index = wanted[claim_id]
        claimed = TransferRow(
            claim_id, fingerprint, canonical_json_text(result), last_position, as_utc(recorded_at)
        )
        page[index] = replace(page[index], transfer=claimed)
    return page


def chain_rows(
    engine: sa.Engine, after: int = 0, *, with_transfers: bool = False
) -> Iterator[list[ChainRow]]:
    """Pages of events after position `after`, in position order (keyset paging: each page is
    one short query, so nothing holds a snapshot or a lock for the whole walk)."""
    statement = _statement(with_transfers)
    while True:
        with engine.connect() as conn:
            raw = conn.execute(statement, {"after": after, "page": PAGE}).all()
        if not raw:
            return
        page = [_row(r) for r in raw]
        if with_transfers:
            with engine.connect() as conn:
                page = _with_hold_claims(conn, page)
        yield page
        after = page[-1].position


def head(engine: sa.Engine) -> tuple[int, str | None]:
    """The last event's position and stored hash: (0, None) in an empty store."""
    query = sa.select(events.c.position, events.c.hash).order_by(events.c.position.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (row[0], row[1]) if row else (0, None)
