"""Sealing personal fields before they are appended, and revealing them for the readers that
show them (the audit endpoint, the projectors).

Encryption happens before the append, so the store (and any hash over it) holds only ciphertext.
Opening an account makes its key here, in memory; the append that opens the account stores the key
in the same transaction (no round trip of its own, and no key left behind by a refused append). The aggregate
never needs a name to decide, so loading an account needs no key: only showing one (a key is read)
and forgetting one (it is destroyed) touch the key table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from kernel.events import NewEvent, RecordedEvent
from kernel.personal_data import holds_personal_data, reveal_payload, seal_payload
from write_side.store.personal_keys import PersonalKeys


@dataclass(frozen=True, slots=True)
class SealedRecords:
    records: list[tuple[str, NewEvent]]
    """(stream id, event), personal fields sealed."""
    new_keys: dict[str, bytes] = field(default_factory=dict)
    """Stream id -> wrapped key of each account opened: for the append to store."""


class PersonalData:
    def __init__(self, keys: PersonalKeys) -> None:
        self._keys = keys

    @property
    def keys(self) -> PersonalKeys:
        return self._keys

    def seal(self, records: Sequence[tuple[str, NewEvent]]) -> SealedRecords:
        """`records` with their personal fields sealed under a new key per account (made here),
        and those keys, wrapped, for the append. Without a master key they stay in clear.

        Only an opening holds personal data, so each of these streams is new: a racing opener
        of the same id made a key of its own, and whichever append loses the race stores none.
        """
        streams = {stream for stream, event in records if holds_personal_data(event.type)}
        if not streams or not self._keys.sealing:
            return SealedRecords(list(records))
        made = {stream: self._keys.new_key(stream) for stream in sorted(streams)}
        sealed = []
        for stream, event in records:
            if holds_personal_data(event.type):
                payload = seal_payload(event.type, event.payload, stream, made[stream].key)
                event = dataclasses.replace(event, payload=payload)
            sealed.append((stream, event))
        return SealedRecords(sealed, {stream: new.wrapped for stream, new in made.items()})

    async def reveal(self, events: Sequence[RecordedEvent]) -> list[RecordedEvent]:
        """`events` with personal fields in clear, or `[erased]` for forgotten accounts."""
        streams = {event.stream_id for event in events if holds_personal_data(event.type)}
        if not streams:
            return list(events)
        found = await self._keys.of(streams)
        return [
            dataclasses.replace(
                event,
                payload=reveal_payload(
                    event.type,
                    event.payload,
                    event.stream_id,
                    found.keys.get(event.stream_id),
                    event.stream_id in found.erased,
                ),
            )
            if holds_personal_data(event.type)
            else event
            for event in events
        ]
