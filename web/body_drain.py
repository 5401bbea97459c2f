"""Reads the rest of a refused request's body before the refusal goes out.

A client sending a body (a chunked one over the size limit, a command without a valid token) may
still be writing when the answer is ready. If the server answered and closed with the body unread,
the client's kernel would get a reset and drop the answer it had not read yet; so the rest of the
body is read first, as uvicorn did for us by buffering it. Only so much (`DRAIN_LIMIT_BYTES`, for
`DRAIN_LIMIT_S`): past that the server may close, as it would for any client that never stops.
"""

from __future__ import annotations

import asyncio

from litestar.types import Receive, ReceiveMessage

DRAIN_LIMIT_BYTES = 64 * 1024
DRAIN_LIMIT_S = 2.0


class BodyReader:
    """`receive` for the app, noting whether the request body has been read to its end."""

    METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
    """The methods whose requests carry a body."""

    __slots__ = ("_receive", "done")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def receive(self) -> ReceiveMessage:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    async def drain(self) -> None:
        """Read and drop what is left of the body, within the limits."""
        read = 0
        try:
            async with asyncio.timeout(DRAIN_LIMIT_S):
                while not self.done and read <= DRAIN_LIMIT_BYTES:
                    message = await self.receive()
                    read += (
                        len(message.get("body", b"")) if message["type"] == "http.request" else 0
                    )
        except TimeoutError:
            return
