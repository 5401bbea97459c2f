"""The per-account personal-data keys: made when an account opens (and stored by the append that
opens it, in its transaction: EventStore.append_many's `new_keys`), read to reveal its personal
fields, destroyed by `bank forget`. Keys are stored wrapped by the master key (kernel/master_key.py).

A row with a NULL key is a tombstone: the account was forgotten, its sealed fields read as
`[erased]` for good, and no key can be made for it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.master_key import MasterKey
from kernel.personal_data import new_data_key
from write_side.store.schema import personal_keys


class MasterKeyMissing(RuntimeError):
    """The store holds sealed personal data but no BANK_MASTER_KEY was given."""

    def __init__(self) -> None:
        super().__init__(
            "the event store holds encrypted personal data: set BANK_MASTER_KEY "
            "(the master key it was written with)"
        )


@dataclass(frozen=True, slots=True)
class AccountKeys:
    """What the store knows of some accounts' keys."""

    keys: dict[str, bytes]
    """Accounts whose personal data can be revealed."""
    erased: frozenset[str]
    """Accounts forgotten (`bank forget`): their personal fields read as `[erased]`."""


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key made for an account being opened: `key` seals its fields, `wrapped` is what the
    append stores."""

    key: bytes
    wrapped: bytes


class PersonalKeys:
    def __init__(self, engine: AsyncEngine, master: MasterKey | None) -> None:
        self._engine = engine
        self._master = master

    @property
    def sealing(self) -> bool:
        """Whether new personal data is sealed (a master key was given)."""
        return self._master is not None

    def new_key(self, account_id: str) -> NewKey:
        """A fresh key for an account being opened; nothing is stored until its append."""
        key = new_data_key()
        return NewKey(key, self._required_master().wrap(account_id, key))

    async def of(self, account_ids: Collection[str]) -> AccountKeys:
        query = sa.select(personal_keys.c.stream_id, personal_keys.c.wrapped_key).where(
            personal_keys.c.stream_id.in_(list(account_ids))
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return self._opened([(stream_id, key) for stream_id, key in rows])

    def _opened(self, rows: Sequence[tuple[str, bytes | None]]) -> AccountKeys:
        keys: dict[str, bytes] = {}
        erased: set[str] = set()
        for stream_id, wrapped in rows:
            if wrapped is None:
                erased.add(stream_id)
            else:
                keys[stream_id] = self._required_master().unwrap(stream_id, bytes(wrapped))
        return AccountKeys(keys, frozenset(erased))

    async def destroy(self, account_id: str) -> None:
        """Forget the account's key for good (a tombstone stays, even if it never had a key)."""
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            updated = await conn.execute(
                personal_keys.update()
                .where(personal_keys.c.stream_id == account_id)
                .values(
                    wrapped_key=None, erased_at=sa.func.coalesce(personal_keys.c.erased_at, now)
                )
            )
            if updated.rowcount == 0:
                await conn.execute(
                    personal_keys.insert().values(
                        stream_id=account_id, wrapped_key=None, created_at=now, erased_at=now
                    )
                )

    def _required_master(self) -> MasterKey:
        if self._master is None:
            raise MasterKeyMissing()
        return self._master


def holds_sealed_data(engine: sa.Engine) -> bool:
    """Whether any account's personal data is sealed: then a process that reads it needs the key."""
    query = sa.select(personal_keys.c.stream_id).where(personal_keys.c.wrapped_key.is_not(None))
    query = query.limit(1)
    with engine.connect() as conn:
        return conn.execute(query).first() is not None
