"""`bank export`: every event in position order as one JSON line, streamed page by page.

A line holds the event's stored fields with payload and metadata in canonical form, so the same
store exports the same bytes from either backend. A TransferSent line also carries the transfers
table's row its transfer claimed (`transfer`), outside the chain: it is derivable from the events
and lets an imported store keep answering retries of those transfer ids. Holds' rows ride the same
way: a hold's on its "from" HoldPlaced line (not on its capture's TransferSent), its resolution's
on the resolving event's "from" line, so an imported store can still capture, void or expire a
pending hold and answers a resolved one's status. An AccountOpened line of
a sealed account carries its personal-data key (`personal_key`), still wrapped by the master key
(or the tombstone of a forgotten account): the moved store reads its owners with the same
`BANK_MASTER_KEY`, and forgotten accounts stay forgotten. Snapshots (derivable) and
idempotency records (short-lived) are not exported.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import IO

import sqlalchemy as sa

from kernel.chain import canonical_time
from write_side.audit.chain_rows import ChainRow, PersonalKeyRow, TransferRow, chain_rows


def export_line(row: ChainRow) -> str:
    fields = [
        f'"position": {row.position}',
        f'"event_id": "{row.event_id}"',
        f'"stream_id": {json.dumps(row.stream_id)}',
        f'"version": {row.version}',
        f'"type": {json.dumps(row.type)}',
        f'"schema_version": {row.schema_version}',
        f'"recorded_at": "{canonical_time(row.recorded_at)}"',
        f'"metadata": {row.metadata_json}',
        f'"payload": {row.payload_json}',
        f'"hash": {json.dumps(row.hash)}',
    ]
    if row.transfer is not None:
        fields.append(f'"transfer": {_transfer(row.transfer)}')
    if row.personal_key is not None:
        fields.append(f'"personal_key": {_personal_key(row.personal_key)}')
    return "{" + ", ".join(fields) + "}\n"


def _personal_key(key: PersonalKeyRow) -> str:
    wrapped = base64.b64encode(key.wrapped_key).decode() if key.wrapped_key is not None else None
    erased_at = canonical_time(key.erased_at) if key.erased_at is not None else None
    return json.dumps(
        {
            "wrapped_key": wrapped,
            "created_at": canonical_time(key.created_at),
            "erased_at": erased_at,
        }
    )


def _transfer(transfer: TransferRow) -> str:
    return (
        f'{{"transfer_id": {json.dumps(transfer.transfer_id)}, '
        f'"fingerprint": {json.dumps(transfer.fingerprint)}, '
        f'"result": {transfer.result_json}, "last_position": {transfer.last_position}, '
        f'"recorded_at": "{canonical_time(transfer.recorded_at)}"}}'
    )


def export_events(
    engine: sa.Engine, out: IO[str], on_page: Callable[[int, int], None] | None = None
) -> int:
    """Write every event to `out`; returns how many."""
    count = 0
    for page in chain_rows(engine, with_transfers=True):
        out.writelines(export_line(row) for row in page)
        count += len(page)
        if on_page is not None:
            on_page(len(page), page[-1].position)
    out.flush()
    return count
