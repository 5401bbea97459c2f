"""Timestamps in query parameters: RFC 3339 with a time zone, read exactly to the microsecond.

Python's `datetime.fromisoformat` accepts much more than RFC 3339 (dates alone, week dates, naive
times, offsets without a colon), so the grammar is spelled out here. A fraction finer than a
microsecond is cut, not rounded: events are recorded in whole microseconds, so an event is at or
before `T` exactly when it is at or before `T` cut to the microsecond. A leap second (`:60`) is read
as the last microsecond of the minute before it. A `+` sent unencoded in a URL arrives as a space;
a space where the offset's sign belongs is read as `+`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from read_side.errors import InvalidInstant

_RFC_3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+\- ])(?P<offset_hours>\d{2}):(?P<offset_minutes>\d{2}))?",
    re.ASCII,
)
_LAST_MICROSECOND = 999_999


def parse_instant(raw: str, name: str) -> datetime:
    """`raw` as an aware datetime; InvalidInstant (a 400) naming the parameter `name` if it is not
    an RFC 3339 timestamp with a time zone."""
    found = _RFC_3339.fullmatch(raw)
    if found is None:
        raise InvalidInstant(
            f"{name} must be an RFC 3339 timestamp with a time zone, such as "
            f"2026-01-31T09:30:00Z or 2026-01-31T10:30:00.250+01:00; got {raw[:64]!r}"
        )
    if not found["utc"] and not found["sign"]:
        raise InvalidInstant(
            f"{name} has no time zone: add Z (UTC) or an offset such as +01:00; got {raw[:64]!r}"
        )
    try:
        return _instant(found)
    except ValueError as exc:
        raise InvalidInstant(f"{name} is not a valid instant ({exc}); got {raw[:64]!r}") from exc


def _instant(found: re.Match[str]) -> datetime:
    year, month, day = (int(part) for part in found["date"].split("-"))
    second = int(found["second"])
    microsecond = int((found["fraction"] or "0")[:6].ljust(6, "0"))
    if second == 60:  # a leap second: nothing is recorded after :59.999999 and before the next :00
        second, microsecond = 59, _LAST_MICROSECOND
    zone = UTC if found["utc"] else _offset(found)
    return datetime(
        year, month, day, int(found["hour"]), int(found["minute"]), second, microsecond, zone
    )


def _offset(found: re.Match[str]) -> timezone:
    hours, minutes = int(found["offset_hours"]), int(found["offset_minutes"])
    if hours > 23 or minutes > 59:
        raise ValueError("the offset is out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if found["sign"] == "-" else offset)


def time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The `from` and `to` of a statement, each optional; `from` after `to` is a 400."""
    start = None if since is None else parse_instant(since, "from")
    end = None if until is None else parse_instant(until, "to")
    if start is not None and end is not None and start > end:
        raise InvalidInstant(f"from ({since}) is after to ({until})")
    return start, end


def utc_text(instant: datetime) -> str:
    """The instant in UTC to the microsecond (in its own offset if UTC cannot hold it: the first
    hours of year 1)."""
    try:
        return instant.astimezone(UTC).isoformat(timespec="microseconds")
    except OverflowError:
        return instant.isoformat(timespec="microseconds")
