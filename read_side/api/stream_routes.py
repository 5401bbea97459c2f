"""The change feed as Server-Sent Events (`GET /stream`) and the query API's `/metrics`.

A client that sends `Last-Event-ID` first gets every change after it still kept in the feed, then
the live ones; if some are no longer kept it gets a `reset` event (reload, then follow) instead of
a silent gap. The subscription to the hub is taken before the backlog is read, and live changes
already sent from the backlog are skipped, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import HeaderParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from auth.guards import requires
from kernel.change_feed import RESET, Change, ChangeId, Reset
from read_side.api.routes import AnyRequest, error_responses, reads_of
from read_side.change_hub import ChangeHub, Subscription
from read_side.change_log import ChangeLog, ChangesLost
from read_side.errors import InvalidCursor
from read_side.metrics import ScrapedFamilies, projection_families, worker_families
from web.metrics import PROMETHEUS_TEXT, exposition

Hub = NamedDependency[ChangeHub]
Log = NamedDependency[ChangeLog]
LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        max_length=40,
        description="Resume after this change id (`<position>-<n>`, or a store position).",
    ),
]

KEEP_ALIVE_S = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""


def _message(change: Change) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=change.data.decode(), event=change.kind, id=str(change.id))


def _reset(reason: str) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(Reset(reason)).decode(), event=RESET)


async def _changes(
    hub: ChangeHub, log: ChangeLog, since: ChangeId | None
) -> AsyncIterator[ServerSentEventMessage]:
    subscription = await hub.subscribe()
    try:
        last = since
        if since is not None:
            try:
                async for change in log.after(since):
                    last = change.id
                    yield _message(change)
            except ChangesLost as lost:
                yield _reset(str(lost))
                last = None
        async for live in _live(subscription):
            if live is None:
                yield ServerSentEventMessage(comment="keep-alive")
            elif last is None or live.id > last:
                last = live.id
                yield _message(live)
    finally:
        hub.unsubscribe(subscription)


async def _live(subscription: Subscription) -> AsyncIterator[Change | None]:
    """Live changes, None for a keep-alive; ends when the hub dropped a slow subscriber."""
    while True:
        try:
            change = await asyncio.wait_for(subscription.queue.get(), KEEP_ALIVE_S)
        except TimeoutError:
            yield None
            continue
        if change is None:
            return
        yield change


@get(
    "/stream",
    guards=[requires("read")],
    media_type="text/event-stream",
    responses=error_responses(400, 401, 403, 503),
)
async def stream(hub: Hub, change_log: Log, last_event_id: LastEventId = None) -> ServerSentEvent:
    """Server-Sent Events: `balance`, `transfer` and `projection` changes as batches commit."""
    since = None
    if last_event_id is not None:
        since = ChangeId.parse(last_event_id)
        if since is None:
            raise InvalidCursor("Last-Event-ID must be a change id such as 42-0, or a position")
    return ServerSentEvent(
        _changes(hub, change_log, since),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@get(
    "/metrics",
    summary="Prometheus metrics: requests, projections, workers, stream clients",
    media_type=PROMETHEUS_TEXT,
)
async def metrics(request: AnyRequest) -> Response[bytes]:
    reader = reads_of(request).reader
    families = projection_families(await reader.projections())
    families += worker_families(await reader.worker_metrics())
    return exposition([ScrapedFamilies(families)])


STREAM_ROUTES = [stream, metrics]
