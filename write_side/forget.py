"""Forgetting an account's personal data (crypto-shredding): destroy its key, then record it.

The key goes first: from that moment nothing can read the sealed fields, whatever happens next. A
failure before the `PersonalDataErased` event is appended leaves a tombstone that already reads
as `[erased]` everywhere; running `forget` again appends the event. The account itself stays open
(or closed) and keeps its money: the name is gone, not the account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from write_side.domain.errors import AccountNotFound
from write_side.personal_data import PersonalData
from write_side.publisher import EventPublisher
from write_side.repository import AccountRepository
from write_side.store.records import ConcurrencyError

MAX_ATTEMPTS = 50
"""Version races are retried on fresh state; a stream this busy for this long is an anomaly."""


@dataclass(frozen=True, slots=True)
class Forgotten:
    account_id: str
    position: int | None
    """The position of the `PersonalDataErased` event, None when it was already recorded."""


async def forget_account(
    repository: AccountRepository,
    personal_data: PersonalData,
    publisher: EventPublisher,
    account_id: str,
) -> Forgotten:
    loaded = await repository.load(account_id)
    if loaded.account.version == 0:
        raise AccountNotFound(f"account {account_id!r} does not exist")
    await personal_data.keys.destroy(account_id)
    for _ in range(MAX_ATTEMPTS):
        account = loaded.account
        expected = account.version
        events = account.erase_personal_data()
        if not events:
            return Forgotten(account_id, None)
        metadata = {"command": "ForgetPersonalData", "correlation_id": uuid.uuid4().hex}
        try:
            result = await repository.save(account, events, expected, metadata)
        except ConcurrencyError:
            loaded = await repository.load(account_id)
            continue
        await publisher.events_committed(account_id, result.last_position)
        return Forgotten(account_id, result.last_position)
    raise ConcurrencyError(account_id, loaded.account.version, loaded.account.version)
