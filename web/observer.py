"""Wraps an API's ASGI handler to give every request an id, a log line and its metrics.

It sits outside Litestar's routing, so requests that match no route (404, 405) are counted and
logged too. The id is the client's `X-Request-ID` when usable, otherwise a new one; it is returned
in the `X-Request-ID` response header and is in the context of every log line of the request. An
error response's code (`{"error": ...}`) is read from its body and passed to `on_finished`, which
is how the write API counts commands by outcome.

This runs on every request, so it keeps to the least work: the labelled metric series are looked up
once per (route, method, status) and kept, and the log line's fields are built only when INFO is
logged.
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
from prometheus_client.metrics import Counter, Histogram

from web import request_ids
from web.body_drain import BodyReader
from web.metrics import LATENCY, REQUESTS

log = logging.getLogger("bank.requests")

UNMATCHED = "<unmatched>"
"""The route label of a request no route matched (keeps the label set small)."""

ERROR_BODY_KEPT = 4096
"""How much of an error response's body is kept to read its code from."""


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


class _Exchange:
    """One request's response as it passes: its status, the request id header added, and the start
    of an error body."""

    __slots__ = ("_body", "_request_id", "_send", "error_body", "status")

    def __init__(self, send: Send, request_id: bytes, body: BodyReader | None) -> None:
        self._send = send
        self._request_id = request_id
        self._body = body
        self.status = 500
        self.error_body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = status = int(message["status"])
            if status >= 400 and self._body is not None:
                await self._body.drain()
            headers = [*message.get("headers", ()), (request_ids.HEADER_BYTES, self._request_id)]
            message = {**message, "headers": headers}
        elif self.status >= 400 and message["type"] == "http.response.body":
            self.error_body += message.get("body", b"")[: ERROR_BODY_KEPT - len(self.error_body)]
        await self._send(message)


class RequestObserver:
    def __init__(self, inner: ASGIApp, api: str, on_finished: OnFinished | None) -> None:
        self._inner = inner
        self._api = api
        self._on_finished = on_finished
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._inner(scope, receive, send)
            return
        request_id = request_ids.chosen_or_new(_sent_request_id(scope))
        token = request_ids.CURRENT.set(request_id)
        started = time.perf_counter()
        body = BodyReader(receive) if scope["method"] in BodyReader.METHODS else None
        exchange = _Exchange(send, request_id.encode(), body)
        try:
            await self._inner(scope, receive if body is None else body.receive, exchange.send)
        finally:
            self._finish(scope, exchange, time.perf_counter() - started)
            request_ids.CURRENT.reset(token)

    def _finish(self, scope: HTTPScope, exchange: _Exchange, seconds: float) -> None:
        method, status = scope["method"], exchange.status
        route = scope.get("path_template") or UNMATCHED
        requests, latency = self._labelled(route, method, status)
        requests.inc()
        latency.observe(seconds)
        if log.isEnabledFor(logging.INFO):
            _log_line(scope, method, route, status, seconds)
        if self._on_finished is not None:
            handler = scope.get("route_handler")
            error = _error_code(exchange.error_body)
            self._on_finished(Finished(method, route, _name(handler), status, error))

    def _labelled(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = (
                REQUESTS.labels(self._api, route, method, str(status)),
                LATENCY.labels(self._api, route, method),
            )
            self._series[key] = series
        return series


def _sent_request_id(scope: HTTPScope) -> str | None:
    for name, value in scope["headers"]:
        if name == request_ids.HEADER_BYTES:
            return value.decode("latin-1")
    return None


def _log_line(scope: HTTPScope, method: str, route: str, status: int, seconds: float) -> None:
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


def _name(handler: Any) -> str | None:
    return getattr(handler, "handler_name", None) if handler is not None else None


def _error_code(body: bytes) -> str | None:
    if not body:
        return None
    try:
        return msgspec.json.decode(body, type=_Error).error
    except msgspec.DecodeError:
        return None
