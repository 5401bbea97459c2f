"""Logging for the processes: one line per record, at the level `LOG_LEVEL` sets (INFO), as text
or, with `BANK_LOG_FORMAT=json`, as one JSON object per line. Records logged while a request is
served carry its id (`request_id`, from `web/request_ids.py`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import msgspec

from kernel.settings import LogSettings
from web import request_ids

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
EXTRA_FIELDS = ("method", "path", "route", "status", "duration_ms")
"""Fields the request observer (`web/observer.py`) adds to its one line per request."""


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_ids.CURRENT.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update({f: getattr(record, f) for f in EXTRA_FIELDS if hasattr(record, f)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry).decode()


def configure_logging(settings: LogSettings) -> None:
    level = settings.level
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter() if settings.format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        handlers=[handler],
        force=True,
    )
