"""A rebuild batch's writes sent as one script call inside its MULTI/EXEC.

A rebuild batch writes thousands of small commands (a hash and two or three sorted sets per
account it touches). Queued one by one on a redis-py transaction, each costs the rebuild more
Python than the fold that computed it: the command object, its packing, and the `QUEUED` reply read
back under its own timeout. `ScriptedWrites` takes the same calls the folds make on a transaction
(`hset`, `zadd`, `zrem`, `hincrby`), keeps each as the command's arguments in text, and queues
them all as one EVAL whose only argument is that list in JSON: the script replays the commands in
order. Redis runs the same commands with the same arguments; the batch's MULTI/EXEC (its WATCHes,
guard and checkpoint) is unchanged around it, so the batch is still all or nothing.

Every argument travels as text, numbers too: Lua's numbers are doubles and would print a score
like 1769851800123457 in exponent form. A command with very many arguments is split (Lua unpacks
at most a few thousand values per call); ZADD and ZREM split into several give the same set.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from redis.asyncio.client import Pipeline

REPLAY = """
for _, command in ipairs(cjson.decode(ARGV[1])) do
  redis.call(unpack(command))
end
return 0
"""
"""ARGV[1]: a JSON array of commands, each an array of strings (name, key, arguments)."""
MAX_PAIRS = 2000
"""Member/score pairs (or members) per ZADD (ZREM) sent to the script."""

_encode = msgspec.json.Encoder().encode


def _text(value: str | bytes | int | float) -> str:
    # redis-py sends text as UTF-8, ints as their digits and floats as repr(); the same here.
    if isinstance(value, str):
        return value
    return value.decode() if isinstance(value, bytes) else str(value)


class ScriptedWrites:
    """The commands of one batch, in order, to be queued as one EVAL (`queue_on`)."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def hset(self, name: str, *, mapping: Mapping[str, str | int]) -> None:
        command = ["HSET", name]
        for field, value in mapping.items():
            command += (field, _text(value))
        self.commands.append(command)

    def zadd(self, name: str, mapping: Mapping[str, int | float] | Mapping[bytes, int]) -> None:
        pairs: list[tuple[str | bytes, int | float]] = list(mapping.items())
        for first in range(0, len(pairs), MAX_PAIRS):
            command = ["ZADD", name]
            for member, score in pairs[first : first + MAX_PAIRS]:
                command += (_text(score), _text(member))
            self.commands.append(command)

    def zrem(self, name: str, *members: str) -> None:
        for first in range(0, len(members), MAX_PAIRS):
            self.commands.append(["ZREM", name, *members[first : first + MAX_PAIRS]])

    def hincrby(self, name: str, key: str, amount: int = 1) -> None:
        self.commands.append(["HINCRBY", name, key, str(amount)])

    def queue_on(self, tx: Pipeline) -> None:
        if self.commands:
            tx.eval(REPLAY, 0, _encode(self.commands))
