"""The hash chain's canonical encoding, defined once so Python computes exactly what PL/pgSQL does.

Every stored event carries `hash` = SHA-256 (lowercase hex) of the UTF-8 bytes of ten fields joined
by "\\n", in this order (the genesis `previous` is 64 zeros):

    previous hash, position, event id (lowercase, hyphenated), stream id, version, type,
    schema version, recorded time (UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`), metadata, payload

Metadata and payload are written as PostgreSQL prints a `jsonb` value (`payload::text`), which is
what `canonical_json` reproduces: object keys sorted by their UTF-8 length and then bytewise (the
last of duplicate keys wins), `", "` between items and `": "` after keys, strings with only `"`,
`\\`, and control characters escaped (\\b \\f \\n \\r \\t, the rest as \\u00xx; everything else,
non-ASCII included, as is), numbers in plain decimal notation keeping their scale (`1.50`, `1e2`
-> `100`, no negative zero). No field but the last two can contain "\\n", and those never do, so
the line is unambiguous. The PostgreSQL side is `bank_event_hash(...)` (migration 0006); the
encoding is frozen: changing it would break every stored chain.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64
"""The `previous` hash of the first event."""

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


_NEEDS_ESCAPING = re.compile(r'["\\\x00-\x1f]')


def _string(text: str) -> str:
    if _NEEDS_ESCAPING.search(text) is None:  # the usual case: nothing to escape
        return f'"{text}"'
    out = ['"']
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise ValueError(f"JSON has no {number}")
    if number.is_zero():
        number = number.copy_abs()
    return f"{number:f}"


def _key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return len(encoded), encoded


def canonical_json(value: Any) -> str:
    """`value` (JSON builtins; numbers may be Decimal) as PostgreSQL prints it as `jsonb`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int | float | Decimal):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_key_order)
        return "{" + ", ".join(f"{_string(k)}: {canonical_json(value[k])}" for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def parse_json(text: str) -> Any:
    """JSON text with its numbers kept exact (Decimal), as `canonical_json` needs them."""
    return json.loads(text, parse_float=Decimal)


def canonical_json_text(text: str) -> str:
    """Stored JSON text (any spacing, key order or number notation) in its canonical form."""
    return canonical_json(parse_json(text))


def canonical_time(moment: datetime) -> str:
    """`moment` in UTC with microseconds; a naive `moment` is taken to be UTC already."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    previous: str,
    position: int,
    event_id: uuid.UUID | str,
    stream_id: str,
    version: int,
    type_name: str,
    schema_version: int,
    recorded_at: datetime,
    metadata_json: str,
    payload_json: str,
) -> str:
    """The hash of one event; `metadata_json` and `payload_json` already canonical."""
    line = "\n".join(
        (
            previous,
            str(position),
            str(event_id).lower(),
            stream_id,
            str(version),
            type_name,
            str(schema_version),
            canonical_time(recorded_at),
            metadata_json,
            payload_json,
        )
    )
    return hashlib.sha256(line.encode()).hexdigest()
