"""Shared by the write API tests: an app on a given database, and the checks every answer shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support import make_settings
from write_side.api.app import create_write_app
from write_side.publisher import NoPublisher
from write_side.store.event_store import EventStore


@asynccontextmanager
async def write_api(database_url: str, **settings: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A running write API (lifespan included) with no projections attached; authentication is
    off unless `auth_enabled=True` is passed (test_api_auth.py covers it)."""
    settings.setdefault("auth_enabled", False)
    app = create_write_app(
        make_settings(database_url=database_url, **settings), lambda _: NoPublisher()
    )
    async with AsyncTestClient(app=app) as client:
        yield client


@asynccontextmanager
async def racing_client(client: AsyncTestClient[Litestar]) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests really run at the same time on the app `client` started.

    AsyncTestClient hands each request to the app one at a time, so `asyncio.gather` over it never
    races; httpx's ASGI transport calls the app in the caller's task, so gathered requests overlap.
    """
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as racing:
        yield racing


def store_of(client: AsyncTestClient[Litestar]) -> EventStore:
    store: EventStore = client.app.state.store
    return store


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """The stable error shape: a JSON object with a code and a sentence, never a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"error", "detail", "current_version", "status"}
    assert "Traceback" not in response.text
