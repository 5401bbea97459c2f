"""Settings, read once from the environment.

Each field says what it controls; `Settings.from_env()` is the only place that reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var") / "bank.db"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


AUTH_ENV = "BANK_AUTH"


class AuthSettingError(SettingsError):
    """`BANK_AUTH` holds a value that is neither `on` nor `off`."""


def auth_enabled() -> bool:
    """Auth is on unless `BANK_AUTH=off`: switching it off must be a deliberate act, so anything
    but `on`/`off` (or unset) is refused at startup instead of being read as one or the other."""
    raw = os.environ.get(AUTH_ENV)
    if raw is None or raw.strip() == "":
        return True
    value = raw.strip().lower()
    if value == "off":
        return False
    if value == "on":
        return True
    raise AuthSettingError(f"{AUTH_ENV} must be 'on' or 'off' (unset means on), got {raw!r}")


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(name: str, raw: str) -> timedelta:
    """`86400`, `90s`, `15m`, `24h` or `7d`: whole seconds, minutes, hours or days, at least 1 s."""
    match = _DURATION.match(raw.strip().lower())
    if match is None or int(match[1]) == 0:
        raise SettingsError(
            f"{name} must be a positive whole number of seconds or a duration such as "
            f"90s, 15m, 24h or 7d, got {raw!r}"
        )
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


def _duration_env(name: str, default: timedelta) -> timedelta:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return parse_duration(name, raw)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    """SQLAlchemy URL of the event store. `postgresql://...` picks psycopg; no value means
    the embedded SQLite file `./var/bank.db`."""

    redis_url: str = "redis://localhost:6379/0"
    """Redis holding the read models, the RQ queues and the projection checkpoints."""

    redis_prefix: str = "bank"
    """Every Redis key the service writes starts with this prefix (no braces or colons)."""

    snapshot_every: int = 100
    """Save an aggregate snapshot each time an account's version is a multiple of this."""

    command_deadline_ms: int = 2000
    """How long a command without `expected_version` keeps retrying a version race (then 503)."""

    queue_name: str = "bank-projections"
    """The RQ queue the projection nudges are sent to; from the environment it defaults to
    `{REDIS_PREFIX}-projections`, so services with different prefixes never share a queue."""

    sweep_interval_s: int = 2
    """How often the worker runs a catch-up even when no command nudged it (and purges expired
    idempotency records)."""

    idempotency_retention: timedelta = timedelta(hours=24)
    """How long an Idempotency-Key is remembered (`IDEMPOTENCY_RETENTION`, e.g. `24h`, `90m`,
    `86400`): a retry within it replays; after it, the key is a new command."""

    auth_enabled: bool = True
    """Bearer-token authentication on both APIs; only `BANK_AUTH=off` switches it off."""

    @classmethod
    def from_env(cls) -> Settings:
        defaults = cls()
        prefix = os.environ.get("REDIS_PREFIX", defaults.redis_prefix)
        if not prefix or any(ch in prefix for ch in "{}: "):
            raise SettingsError(
                f"REDIS_PREFIX must be non-empty without braces, colons or spaces, got {prefix!r}"
            )
        return cls(
            database_url=os.environ.get("DATABASE_URL") or defaults.database_url,
            redis_url=os.environ.get("REDIS_URL") or defaults.redis_url,
            redis_prefix=prefix,
            snapshot_every=_int_env("SNAPSHOT_EVERY", defaults.snapshot_every),
            command_deadline_ms=_int_env("COMMAND_DEADLINE_MS", defaults.command_deadline_ms),
            queue_name=os.environ.get("RQ_QUEUE") or f"{prefix}-projections",
            sweep_interval_s=_int_env("SWEEP_INTERVAL_S", defaults.sweep_interval_s),
            idempotency_retention=_duration_env(
                "IDEMPOTENCY_RETENTION", defaults.idempotency_retention
            ),
            auth_enabled=auth_enabled(),
        )
