"""Personal data in events, sealed per account so that it can be forgotten (crypto-shredding).

The event store is append-only, so a person's name written into an event can never be deleted.
Instead each personal field is stored encrypted (AES-GCM) with a key of the account's own: the
stored form is `{"enc": "<base64 nonce + ciphertext>"}`. Destroying that one key (`bank forget`)
makes every copy of the field unreadable at once, while amounts, balances and the event log stay.

This module knows the shapes and the cipher; where the keys live (SQL) is the write side's business.
A field that can no longer be read shows as `ERASED`.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, TypeAlias

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ERASED = "[erased]"
"""What a forgotten personal field reads as, everywhere."""

PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {"AccountOpened": ("owner",)}
"""Event type -> the payload fields that hold personal data (sealed when stored)."""

NONCE_BYTES = 12
KEY_BYTES = 32


class Sealed(msgspec.Struct, frozen=True):
    """A personal field as stored: base64 of the 12-byte nonce followed by the ciphertext."""

    enc: str


Personal: TypeAlias = str | Sealed
"""A personal field: clear text (decided now, revealed, or written before encryption) or sealed."""


class CannotUnseal(ValueError):
    """A sealed field did not decrypt with the key given (a wrong key, or tampered data)."""


def new_data_key() -> bytes:
    """A fresh 256-bit AES key for one account."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _context(account_id: str, field: str) -> bytes:
    """The associated data: a sealed field only opens for its own account and field."""
    return f"{account_id}\x00{field}".encode()


def seal(key: bytes, account_id: str, field: str, text: str) -> Sealed:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, text.encode(), _context(account_id, field))
    return Sealed(base64.b64encode(nonce + ciphertext).decode("ascii"))


def unseal(key: bytes, account_id: str, field: str, sealed: Sealed) -> str:
    try:
        raw = base64.b64decode(sealed.enc, validate=True)
        clear = AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _context(account_id, field)
        )
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise CannotUnseal(f"{field} of {account_id!r} does not decrypt") from exc
    return clear.decode()


def shown(value: Personal) -> str:
    """The text to display: a field still sealed here was not revealed, so it reads as erased."""
    return value if isinstance(value, str) else ERASED


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("enc"), str)


def seal_payload(
    type_name: str, payload: dict[str, Any], account_id: str, key: bytes
) -> dict[str, Any]:
    """The payload with each of its personal fields sealed (clear ones only)."""
    fields = PERSONAL_FIELDS.get(type_name, ())
    sealed = dict(payload)
    for field in fields:
        value = payload.get(field)
        if isinstance(value, str):
            sealed[field] = msgspec.to_builtins(seal(key, account_id, field, value))
    return sealed


def reveal_payload(
    type_name: str, payload: dict[str, Any], account_id: str, key: bytes | None, erased: bool
) -> dict[str, Any]:
    """The payload with its personal fields in clear, or `ERASED` where the account was forgotten
    (`erased`) or its key is gone (`key` None). A field stored in clear (before encryption was
    switched on) is shown unless the account was forgotten."""
    fields = PERSONAL_FIELDS.get(type_name, ())
    if not fields:
        return payload
    revealed = dict(payload)
    for field in fields:
        value = payload.get(field)
        if erased:
            revealed[field] = ERASED
        elif isinstance(value, dict) and is_sealed(value):
            revealed[field] = (
                ERASED if key is None else unseal(key, account_id, field, Sealed(value["enc"]))
            )
    return revealed


def holds_personal_data(type_name: str) -> bool:
    return type_name in PERSONAL_FIELDS
