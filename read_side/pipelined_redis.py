"""The query API's hot reads over one pipelined Redis connection per process.

A balance read is one Lua script call. Through redis-py each call checks a connection out of the
pool and back, arms a timeout for the write (a task of its own) and one for the read, and costs
one write and one read system call: more CPU than the rest of the request together. Here the
process keeps one connection, and the requests of a loop turn share it: their commands go out in
one write, and the replies, which Redis sends in the order it got the commands, are handed to
their callers in order. One timer per connection enforces the timeout.

Failures keep redis-py's meaning: a refused or lost connection is `redis.exceptions.
ConnectionError`, no reply within the timeout is `TimeoutError` (both answered 503
`redis_unavailable`); a lost connection is reconnected and the read retried (`RETRIES`, with a
short back-off), as the pool did for a Redis that restarted. Scripts are called by their digest
and sent in full once when Redis does not know them (after a restart or a `SCRIPT FLUSH`).

Only what the hot reads need: plain `redis://` and `unix://` URLs (with a password and a
database); the reader keeps redis-py for everything else (`PipelinedRedis.supports`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 2
BACKOFF_S = (0.005, 0.02)

Arg = str | int


class _Connection(asyncio.Protocol):
    """One Redis connection: commands written in batches, replies matched in order."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self._reader = hiredis.Reader(encoding="utf-8", replyError=ResponseError)
        self._waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not subclasses of asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)

    def request(self, command: Sequence[Arg]) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise RedisConnectionError(str(self.lost))
        reply = self._loop.create_future()
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        # hiredis' stub declares a 1-tuple; any number of arguments is packed.
        self._outgoing.append(hiredis.pack_command(tuple(command)))  # type: ignore[arg-type]
        self._waiting.append((self._loop.time() + self._timeout_s, reply))
        if self._timer is None:
            self._timer = self._loop.call_at(self._waiting[0][0], self._check_deadline)
        return reply

    def _flush(self) -> None:
        if self._transport is not None and self.lost is None:
            self._transport.writelines(self._outgoing)
        self._outgoing = []

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                _, waiter = self._waiting.popleft()
                if not waiter.done():  # its caller may have given up (cancelled)
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbled, or a reply nobody asked for
            self._fail(RedisConnectionError(f"Protocol error from Redis: {exc!r}"))

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        deadline = self._waiting[0][0]
        if deadline <= self._loop.time():
            self._fail(RedisTimeoutError("Timeout reading from Redis"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Connection to Redis lost: {exc or 'closed'}"))

    def _fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        while self._waiting:
            _, waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()


class PipelinedRedis:
    """Commands over one shared connection, made on first use and remade when lost."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self._options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._timeout_s = timeout_s
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    @staticmethod
    def supports(url: str) -> bool:
        return url.startswith(("redis://", "unix://"))

    async def execute(self, *command: Arg) -> Any:
        for attempt in range(RETRIES + 1):
            try:
                connection = self._connection
                if connection is None or connection.lost is not None:
                    connection = await self._connect()
                reply = await connection.request(command)
            except RedisConnectionError:
                if attempt == RETRIES:
                    raise
                await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                continue
            if isinstance(reply, ResponseError):
                raise NoScriptError(str(reply)) if str(reply).startswith("NOSCRIPT") else reply
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def register_script(self, source: str) -> PipelinedScript:
        return PipelinedScript(self, source)

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._forget_connecting)
        return await asyncio.shield(self._connecting)

    def _forget_connecting(self, _: asyncio.Task[_Connection]) -> None:
        self._connecting = None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        options = self._options
        try:
            async with asyncio.timeout(self._timeout_s):
                if "path" in options:
                    _, connection = await loop.create_unix_connection(
                        lambda: _Connection(self._timeout_s), options["path"]
                    )
                else:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self._timeout_s),
                        options.get("host", "localhost"),
                        options.get("port", 6379),
                    )
                await self._handshake(connection)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"Error connecting to Redis: {exc}") from exc
        self._connection = connection
        return connection

    async def _handshake(self, connection: _Connection) -> None:
        commands: list[tuple[Arg, ...]] = []
        if options_password := self._options.get("password"):
            username = self._options.get("username")
            auth = ("AUTH", username, options_password) if username else ("AUTH", options_password)
            commands.append(auth)
        if db := int(self._options.get("db") or 0):
            commands.append(("SELECT", db))
        for command in commands:
            reply = await connection.request(command)
            if isinstance(reply, ResponseError):
                connection.connection_lost(reply)
                raise RedisConnectionError(f"Redis refused {command[0]}: {reply}")

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.connection_lost(None)
            self._connection = None


class PipelinedScript:
    """A Lua script called by its digest; sent in full once if Redis does not know it."""

    def __init__(self, redis: PipelinedRedis, source: str) -> None:
        self._redis = redis
        self._source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return await self._redis.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._redis.execute("EVAL", self._source, len(keys), *keys, *args)
