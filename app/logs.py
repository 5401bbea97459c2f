"""Logging for the processes: one line per record, at the level `LOG_LEVEL` sets (INFO)."""

from __future__ import annotations

import logging

from kernel.settings import LogSettings


def configure_logging(settings: LogSettings) -> None:
    level = settings.level
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
