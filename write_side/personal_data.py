"""Sealing personal fields before they are appended, and revealing them for the readers that
show them (the audit endpoint, the projectors).

Encryption happens before the append, so the store (and any hash over it) holds only ciphertext.
The aggregate never needs a name to decide, so loading an account needs no key: only opening one
(a key is made) and showing one (a key is read) touch the key table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from kernel.events import NewEvent, RecordedEvent
from kernel.personal_data import holds_personal_data, reveal_payload, seal_payload
from write_side.store.personal_keys import PersonalKeys
from write_side.store.records import ConcurrencyError


class PersonalData:
    def __init__(self, keys: PersonalKeys) -> None:
        self._keys = keys

    @property
    def keys(self) -> PersonalKeys:
        return self._keys

    async def seal(self, records: Sequence[tuple[str, NewEvent]]) -> list[tuple[str, NewEvent]]:
        """`records` with their personal fields sealed under each account's key (made here).
        Without a master key they stay in clear."""
        streams = {stream for stream, event in records if holds_personal_data(event.type)}
        if not streams or not self._keys.sealing:
            return list(records)
        found = await self._keys.create(streams)
        sealed = []
        for stream, event in records:
            if holds_personal_data(event.type):
                key = found.keys.get(stream)
                if key is None:
                    # Only a forgotten account has no key, and it exists: this open lost a race.
                    raise ConcurrencyError(stream, 0, 1)
                event = dataclasses.replace(
                    event, payload=seal_payload(event.type, event.payload, stream, key)
                )
            sealed.append((stream, event))
        return sealed

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
