"""Walking the hash chain: every event must hash to its stored `hash` from the one before it.

The first event that does not is reported with the reason, found by looking at what is around it:
a gap in the positions is a deleted row; a later event that hashes correctly at this position was
moved (order broken); otherwise the event's own contents (or its hash) changed. A digest kept
elsewhere (`position:hash`, from `bank digest`) proves that nothing up to it changed, and it also
catches what the chain alone cannot see: deleted events at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from kernel.chain import GENESIS
from write_side.audit.chain_rows import ChainRow, chain_rows

OnPage = Callable[[int, int], None]
"""Called after each page with (events in it, its last position)."""


@dataclass(frozen=True, slots=True)
class Digest:
    position: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """`<position>:<hash>`, as `bank digest` prints it."""
        position, sep, hash_ = text.strip().partition(":")
        if not sep or not position.isdigit() or len(hash_) != 64:
            raise ValueError(f"a digest is <position>:<64 hex digits>, not {text!r}")
        try:
            int(hash_, 16)
        except ValueError:
            raise ValueError(f"a digest is <position>:<64 hex digits>, not {text!r}") from None
        return cls(int(position), hash_.lower())

    def __str__(self) -> str:
        return f"{self.position}:{self.hash}"


@dataclass(frozen=True, slots=True)
class Verdict:
    events: int
    head: Digest
    """The last verified position and its hash (0 and the genesis hash in an empty store)."""
    failed_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.failed_at is None


class _Broken(Exception):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


def verify_chain(
    engine: sa.Engine, digest: Digest | None = None, on_page: OnPage | None = None
) -> Verdict:
    previous, last, count = GENESIS, 0, 0
    try:
        for page in chain_rows(engine):
            for row in page:
                _check_link(engine, previous, last, row)
                if digest is not None:
                    _check_digest(digest, last, row)
                previous, last, count = row.hash or "", row.position, count + 1
            if on_page is not None:
                on_page(len(page), last)
        if digest is not None and digest.position > last:
            raise _Broken(
                digest.position,
                f"the chain ends at position {last}, before the digest's position "
                f"{digest.position}: events at the end were deleted",
            )
    except _Broken as broken:
        return Verdict(count, Digest(last, previous), broken.position, broken.reason)
    return Verdict(count, Digest(last, previous))


def _check_link(engine: sa.Engine, previous: str, last: int, row: ChainRow) -> None:
    if row.hash is not None and row.link(previous) == row.hash:
        return
    if row.position != last + 1:
        missing = (
            f"position {last + 1} is"
            if row.position == last + 2
            else f"positions {last + 1} to {row.position - 1} are"
        )
        raise _Broken(last + 1, f"row missing: {missing} gone, position {row.position} follows")
    moved = _belongs_here(engine, previous, row)
    if moved is not None:
        raise _Broken(
            row.position,
            f"order broken: the event now at position {moved} belongs at position {row.position}",
        )
    if row.hash is None:
        raise _Broken(row.position, "the event has no hash")
    raise _Broken(
        row.position,
        "payload changed: the event's contents (payload, type, stream, version, time or "
        "metadata) or its stored hash no longer match the chain",
    )


def _belongs_here(engine: sa.Engine, previous: str, row: ChainRow) -> int | None:
    """The position of a later event that hashes correctly at `row`'s position, if any (a
    second walk, only after a failure)."""
    for page in chain_rows(engine, row.position):
        for later in page:
            if later.hash == later.at(row.position).link(previous):
                return later.position
    return None


def _check_digest(digest: Digest, last: int, row: ChainRow) -> None:
    if row.position == digest.position and row.hash != digest.hash:
        raise _Broken(
            row.position,
            f"digest mismatch: position {row.position} has hash {row.hash}, the digest says "
            f"{digest.hash}",
        )
    if last < digest.position < row.position:
        raise _Broken(digest.position, f"row missing: the digest's position {digest.position}")
