"""Settings: one object, grouped by what each part of the service needs, read from the
environment once per process (`Settings.from_env()`) and passed down from there.

Nothing else reads `os.environ` for a setting. Each field says what it controls; msgspec converts
and checks the values, and a bad one stops the process with the variable's name in the message.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from kernel.master_key import InvalidMasterKey, master_key_bytes

DEFAULT_SQLITE_PATH = Path("var") / "bank.db"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"

AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
Prefix = Annotated[str, msgspec.Meta(pattern=r"\A[^{}: ]+\Z")]


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


class AuthSettingError(SettingsError):
    """`BANK_AUTH` holds a value that is neither `on` nor `off`."""


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    """`DATABASE_URL`: SQLAlchemy URL of the event store. `postgresql://...` picks psycopg; no
    value means the embedded SQLite file `./var/bank.db`."""
    snapshot_every: AtLeastOne = 100
    """`SNAPSHOT_EVERY`: save an aggregate snapshot each time a version crosses a multiple."""
    command_deadline_ms: AtLeastOne = 2000
    """`COMMAND_DEADLINE_MS`: how long a command without `expected_version` keeps retrying a
    version race (then 503)."""
    idempotency_retention: timedelta = timedelta(hours=24)
    """`IDEMPOTENCY_RETENTION` (e.g. `24h`, `90m`, `86400`): how long an Idempotency-Key is
    remembered; a retry within it replays, after it the key is a new command."""


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str = DEFAULT_REDIS_URL
    """`REDIS_URL`: Redis holding the read models, the RQ queue, checkpoints and the key mirror."""
    configured: bool = False
    """Whether `REDIS_URL` was set: `bank up` starts or finds a local Redis when it was not."""
    prefix: Prefix = "bank"
    """`REDIS_PREFIX`: every Redis key the service writes starts with it (no braces, colons or
    spaces)."""
    queue: str = "bank-projections"
    """`RQ_QUEUE`: the queue of projection jobs; `{REDIS_PREFIX}-projections` by default, so
    services with different prefixes never share a queue."""
    local_url: str = DEFAULT_REDIS_URL
    """`BANK_LOCAL_REDIS_URL`: where `bank up` looks for a local Redis before it starts an
    embedded one."""


class WorkerSettings(msgspec.Struct, frozen=True, kw_only=True):
    sweep_interval_s: AtLeastOne = 2
    """`SWEEP_INTERVAL_S`: how often the worker catches up even when no command nudged it,
    refreshes the API-key mirror and purges expired idempotency records."""


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = True
    """`BANK_AUTH`: bearer-token authentication on both APIs; only `off` switches it off."""


class PersonalDataSettings(msgspec.Struct, frozen=True, kw_only=True):
    master_key: str | None = None
    """`BANK_MASTER_KEY`: base64 of 32 random bytes that wraps every account's personal-data key.
    Unset: personal data is written in clear, and processes that need to read it refuse to start
    when the store already holds encrypted data."""


class LogSettings(msgspec.Struct, frozen=True, kw_only=True):
    level: str = "INFO"
    """`LOG_LEVEL`: the processes' log level."""
    format: Literal["text", "json"] = "text"
    """`BANK_LOG_FORMAT`: `text` (one readable line per record) or `json` (one JSON object per
    line, with the request id)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    personal_data: PersonalDataSettings = msgspec.field(default_factory=PersonalDataSettings)

    @classmethod
    def from_env(cls) -> Settings:
        return settings_from(os.environ)


ENVIRONMENT: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("store", "database_url"),
    "SNAPSHOT_EVERY": ("store", "snapshot_every"),
    "COMMAND_DEADLINE_MS": ("store", "command_deadline_ms"),
    "IDEMPOTENCY_RETENTION": ("store", "idempotency_retention"),
    "REDIS_URL": ("redis", "url"),
    "REDIS_PREFIX": ("redis", "prefix"),
    "RQ_QUEUE": ("redis", "queue"),
    "BANK_LOCAL_REDIS_URL": ("redis", "local_url"),
    "SWEEP_INTERVAL_S": ("worker", "sweep_interval_s"),
    "BANK_AUTH": ("auth", "enabled"),
    "LOG_LEVEL": ("log", "level"),
    "BANK_LOG_FORMAT": ("log", "format"),
    "BANK_MASTER_KEY": ("personal_data", "master_key"),
}
"""Each environment variable and the setting it fills."""


def settings_from(environ: dict[str, str] | os._Environ[str]) -> Settings:
    """Settings from an environment mapping; unset or empty variables keep their defaults."""
    groups: dict[str, dict[str, Any]] = {}
    for name, (group, field) in ENVIRONMENT.items():
        raw = (environ.get(name) or "").strip()
        if raw:
            groups.setdefault(group, {})[field] = _parsed(name, raw)
    redis = groups.setdefault("redis", {})
    redis["configured"] = "url" in redis
    redis.setdefault("queue", f"{redis.get('prefix', RedisSettings().prefix)}-projections")
    try:
        return msgspec.convert(groups, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explained(str(exc), environ)) from None


def _parsed(name: str, raw: str) -> Any:
    if name == "BANK_AUTH":
        return _auth_enabled(raw)
    if name == "IDEMPOTENCY_RETENTION":
        return parse_duration(name, raw).total_seconds()
    if name == "LOG_LEVEL":
        return raw.upper()
    if name == "BANK_LOG_FORMAT":
        return raw.lower()
    if name == "BANK_MASTER_KEY":
        try:
            master_key_bytes(raw)
        except InvalidMasterKey as exc:
            raise SettingsError(str(exc)) from None
    return raw


_WANTED = {
    "snapshot_every": "a whole number of at least 1",
    "command_deadline_ms": "a whole number of at least 1",
    "sweep_interval_s": "a whole number of at least 1",
    "prefix": "non-empty, without braces, colons or spaces",
    "format": "'text' or 'json'",
}


def _explained(message: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """msgspec names the field (`$.store.snapshot_every`); people set the variable."""
    for name, (group, field) in ENVIRONMENT.items():
        if f"$.{group}.{field}" in message:
            wanted = _WANTED.get(field, message.split(" - ")[0])
            return f"{name} must be {wanted}, got {environ.get(name, '')!r}"
    return message


def _auth_enabled(raw: str) -> bool:
    """Switching auth off must be a deliberate act: anything but `on`/`off` is refused at
    startup instead of being read as one or the other."""
    value = raw.lower()
    if value in ("on", "off"):
        return value == "on"
    raise AuthSettingError(f"BANK_AUTH must be 'on' or 'off' (unset means on), got {raw!r}")


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
