"""Whether authentication is on: it is, unless `BANK_AUTH=off` says otherwise.

Switching auth off must be a deliberate act, so anything but `on`/`off` (or unset) is refused at
startup instead of being read as one or the other.
"""

from __future__ import annotations

import os

from kernel.settings import SettingsError

AUTH_ENV = "BANK_AUTH"


class AuthSettingError(SettingsError):
    """`BANK_AUTH` holds a value that is neither `on` nor `off`."""


def auth_enabled() -> bool:
    raw = os.environ.get(AUTH_ENV)
    if raw is None or raw.strip() == "":
        return True
    value = raw.strip().lower()
    if value == "off":
        return False
    if value == "on":
        return True
    raise AuthSettingError(f"{AUTH_ENV} must be 'on' or 'off' (unset means on), got {raw!r}")
