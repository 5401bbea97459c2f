"""Wraps an API's ASGI handler to give every request an id, a log line and its metrics.

It sits outside Litestar's routing, so requests that match no route (404, 405) are counted and
logged too. The id is the client's `X-Request-ID` when usable, otherwise a new one; it is returned
in the `X-Request-ID` response header and is in the context of every log line of the request. An
error response's code (`{"error": ...}`) is read from its body and passed to `on_finished`, which
is how the write API counts commands by outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from web import request_ids
from web.metrics import LATENCY, REQUESTS

log = logging.getLogger("bank.requests")

UNMATCHED = "<unmatched>"
"""The route label of a request no route matched (keeps the label set small)."""


@dataclass(slots=True)
class Finished:
    """What `on_finished` is told about a request once its response is complete."""

    method: str
    route: str
    handler: str | None
    status: int
    error: str | None


OnFinished = Callable[[Finished], None]


class _Error(msgspec.Struct):
    error: str | None = None


def observe(app: Litestar, api: str, on_finished: OnFinished | None = None) -> Litestar:
    """Put the observer around `app`'s handler (after Litestar built its own wrapping)."""
    app.asgi_handler = RequestObserver(app.asgi_handler, api, on_finished)
    return app


class RequestObserver:
    def __init__(self, inner: ASGIApp, api: str, on_finished: OnFinished | None) -> None:
        self._inner = inner
        self._api = api
        self._on_finished = on_finished

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._inner(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(request_ids.HEADER.encode())
        request_id = request_ids.chosen_or_new(sent.decode("latin-1") if sent else None)
        token = request_ids.CURRENT.set(request_id)
        started = time.perf_counter()
        status, error_body = 500, bytearray()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers") or [])
                headers.append((request_ids.HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and status >= 400:
                error_body.extend(message.get("body", b"")[: 4096 - len(error_body)])
            await send(message)

        try:
            await self._inner(scope, receive, send_observed)
        finally:
            self._finish(scope, status, bytes(error_body), time.perf_counter() - started)
            request_ids.CURRENT.reset(token)

    def _finish(self, scope: HTTPScope, status: int, error_body: bytes, seconds: float) -> None:
        method = scope["method"]
        route = scope.get("path_template") or UNMATCHED
        REQUESTS.labels(self._api, route, method, str(status)).inc()
        LATENCY.labels(self._api, route, method).observe(seconds)
        log.info(
            "%s %s %d %.1fms",
            method,
            scope["path"],
            status,
            seconds * 1000,
            extra={
                "method": method,
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
        if self._on_finished is not None:
            handler = scope.get("route_handler")
            self._on_finished(
                Finished(method, route, _name(handler), status, _error_code(error_body))
            )


def _name(handler: Any) -> str | None:
    return getattr(handler, "handler_name", None) if handler is not None else None


def _error_code(body: bytes) -> str | None:
    if not body:
        return None
    try:
        return msgspec.json.decode(body, type=_Error).error
    except msgspec.DecodeError:
        return None
