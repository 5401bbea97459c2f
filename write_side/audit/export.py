"""`bank export`: every event in position order as one JSON line, streamed page by page.

A line holds the event's stored fields with payload and metadata in canonical form, so the same
store exports the same bytes from either backend. A TransferSent line also carries the transfers
table's row its transfer claimed (`transfer`), outside the chain: it is derivable from the events
and lets an imported store keep answering retries of those transfer ids. Snapshots (derivable) and
idempotency records (short-lived) are not exported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO

import sqlalchemy as sa

from kernel.chain import canonical_time
from write_side.audit.chain_rows import ChainRow, TransferRow, chain_rows


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
    return "{" + ", ".join(fields) + "}\n"


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
