"""The id of the request being served: the client's `X-Request-ID` when it sent a usable one,
otherwise a new one. Kept in a context variable so every log line of the request can carry it
(`app/logs.py`) without being passed around."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "x-request-id"
HEADER_BYTES = HEADER.encode()
CURRENT: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The id of the request this task serves; None outside a request."""

_USABLE = re.compile(r"\A[A-Za-z0-9._:/+=-]{1,128}\Z")
"""What a client may choose: printable, no spaces or quotes, so it is safe in logs and headers."""


def chosen_or_new(sent: str | None) -> str:
    if sent is not None and _USABLE.match(sent):
        return sent
    return secrets.token_hex(16)
