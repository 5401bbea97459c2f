"""Opaque cursors for the accounts listing: the last index member seen, bound to its sort order.

A cursor is keyset pagination (resume strictly after a member), not an offset, so a page never
repeats or skips an account because others were added or changed balance meanwhile.
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from read_side.errors import InvalidCursor


class _Cursor(msgspec.Struct, frozen=True):
    sort: str
    order: str
    after: str


def encode_cursor(sort: str, order: str, after: str) -> str:
    raw = msgspec.json.encode(_Cursor(sort, order, after))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, order: str) -> str:
    """The member to resume after; InvalidCursor if it is not ours or not for this sort order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(raw, type=_Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidCursor("cursor is not one this API handed out") from None
    if (decoded.sort, decoded.order) != (sort, order):
        raise InvalidCursor(
            f"cursor belongs to sort={decoded.sort}&order={decoded.order}, not sort={sort}&order={order}"
        )
    return decoded.after
