"""The key `bank up` prints: created on the first start, then read back from `./var/`.

Only its hash is in the database, so the plaintext lives in a 0600 file next to the SQLite store.
If that file is lost or its key was revoked, a fresh `local` key replaces the old one.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from auth.key_store import create_key, key_changes, live_key_scopes, revoke_key
from auth.tokens import ADMIN, READ, WRITE, hash_token, looks_like_token

LOCAL_KEY_NAME = "local"
LOCAL_KEY_SCOPES = (WRITE, READ, ADMIN)


def ensure_local_key(engine: sa.Engine, key_file: Path) -> str:
    """The plaintext token of the live `local` key, creating it (and `key_file`) when needed."""
    saved = _read_token(key_file)
    with key_changes(engine) as conn:
        if saved is not None and hash_token(saved) in live_key_scopes(conn):
            return saved
        token = _replace_local_key(conn)
        _write_private(key_file, token)  # inside the transaction: no key without its file
    return token


def _replace_local_key(conn: sa.Connection) -> str:
    revoke_key(conn, LOCAL_KEY_NAME)  # its plaintext is gone; nobody can use it any more
    return create_key(conn, LOCAL_KEY_NAME, LOCAL_KEY_SCOPES)


def _read_token(key_file: Path) -> str | None:
    try:
        token = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token if looks_like_token(token) else None


def _write_private(key_file: Path, token: str) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    partial = key_file.with_name(key_file.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(partial, 0o600)  # the mode given to open() is only used when the file is new
    os.replace(partial, key_file)
