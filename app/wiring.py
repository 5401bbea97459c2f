"""The apps as the `bank` processes serve them: settings loaded once per process, the write API's
publisher wired to the projectors' nudge. Only the shell knows both sides, so this lives here."""

from __future__ import annotations

from litestar import Litestar

from app.logs import configure_logging
from kernel.settings import Settings
from projectors.nudge import RedisNudgePublisher
from read_side.api.app import create_query_app
from write_side.api.app import create_write_app


def write_api_from_env() -> Litestar:
    """The factory `bank write-api` serves (granian, factory=True), once per worker process."""
    settings = Settings.from_env()
    configure_logging(settings.log)
    return create_write_app(settings, RedisNudgePublisher)


def query_api_from_env() -> Litestar:
    """The factory `bank query-api` serves (granian, factory=True), once per worker process."""
    settings = Settings.from_env()
    configure_logging(settings.log)
    return create_query_app(settings)
