"""Schema evolution: stored shapes of the past brought to today's shape, one small step at a time.

Events are never rewritten in the store, so a payload written under schema version 1 is still read
long after the code has moved on. Every change to a stored shape bumps its chain's `current`
version and adds one step, `steps[v]`, that turns a version-`v` payload into a version-`v + 1`
one. Reading applies the steps in order, so each step is written once, against the shape just
before it, and never has to know about later ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Payload = dict[str, Any]
Step = Callable[[str, Payload], Payload]
"""(type name, payload at version v) -> payload at version v + 1."""


class CannotUpcast(ValueError):
    """A stored shape no step leads from (too old to read, or written by newer code)."""


@dataclass(frozen=True, slots=True)
class UpcasterChain:
    current: int
    """The version the code writes and reads natively."""
    steps: Mapping[int, Step] = field(default_factory=dict)

    @property
    def oldest_readable(self) -> int:
        """The oldest version from which an unbroken run of steps leads to `current`."""
        version = self.current
        while version - 1 in self.steps:
            version -= 1
        return version

    def upcast(self, type_name: str, version: int, payload: Payload) -> Payload:
        if version > self.current:
            raise CannotUpcast(
                f"{type_name} has schema version {version}, newer than this code's {self.current}"
            )
        while version < self.current:
            step = self.steps.get(version)
            if step is None:
                raise CannotUpcast(f"no upcaster for {type_name} from schema version {version}")
            payload = step(type_name, payload)
            version += 1
        return payload
