"""The master key (`BANK_MASTER_KEY`) that wraps every account's personal-data key.

Account keys are stored wrapped (AES-GCM under the master key, bound to their account id), so a
copy of the database alone reads no personal data. The master key is 32 random bytes, base64.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kernel.personal_data import KEY_BYTES, NONCE_BYTES

if TYPE_CHECKING:
    from kernel.settings import Settings

MAKE_ONE = 'python -c "import os,base64; print(base64.b64encode(os.urandom(32)).decode())"'
"""The one-liner the README and the error messages show."""


class InvalidMasterKey(ValueError):
    """The text is not base64 of 32 bytes, or the key does not open what it should."""


def new_master_key_text() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def master_key_bytes(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise InvalidMasterKey(
            f"BANK_MASTER_KEY must be base64 of 32 random bytes; make one with {MAKE_ONE}"
        )
    return raw


class MasterKey:
    def __init__(self, text: str) -> None:
        self._aead = AESGCM(master_key_bytes(text))

    def wrap(self, account_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, account_id.encode())

    def unwrap(self, account_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], account_id.encode()
            )
        except InvalidTag:
            raise InvalidMasterKey(
                f"the key of account {account_id!r} does not open with BANK_MASTER_KEY "
                "(is it the master key this store was written with?)"
            ) from None


def master_key_of(settings: Settings) -> MasterKey | None:
    """The configured master key, or None when `BANK_MASTER_KEY` is unset."""
    text = settings.personal_data.master_key
    return MasterKey(text) if text else None
