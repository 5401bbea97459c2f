"""What a rebuild remembers of its scratch generation between batches.

A live generation has many writers (the runners of every worker, a rebuild's last stretch), so
each batch reads the state of its accounts from Redis. A rebuild's scratch generation has exactly
one writer while it fills, the rebuild, which holds the projection's rebuild lock and checks it in
every batch's transaction: what the last committed batch wrote is what the rebuild itself
computed. So the one-pass rebuild (one_pass.py) keeps each account's projected state and the
highest score of its time index in memory, and its batches read nothing back.

Memory grows with the accounts, not with the events: one state and one score per account.

The memory is trusted only for the checkpoint it was taken at (`position`): a batch is staged
from it, and what the batch produced is taken in (`keep`) only once its transaction committed. A
refused or failed batch leaves the memory as it was, at the old checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from projectors.projection import Projection

State = TypeVar("State")


@dataclass(slots=True)
class AccountMemory(Generic[State]):
    states: dict[str, State] = field(default_factory=dict)
    """Each account's state in the generation, as of `position`."""
    latest: dict[str, int] = field(default_factory=dict)
    """The highest score in each account's time index, as of `position`."""
    position: int = 0
    """The checkpoint the memory stands at: 0, an empty generation, until a batch is kept."""
    _staged: tuple[int, Mapping[str, State], Mapping[str, int]] | None = None

    def staged(self, position: int, states: Mapping[str, State], latest: Mapping[str, int]) -> None:
        """What a batch ending at `position` will leave, once its transaction commits."""
        self._staged = (position, states, latest)

    def keep(self) -> None:
        """The staged batch committed: the memory moves to its checkpoint."""
        if self._staged is None:
            return
        position, states, latest = self._staged
        self.states.update(states)
        self.latest.update(latest)
        self.position = position
        self._staged = None

    def drop(self) -> None:
        """The staged batch was refused or failed: the memory stays at its checkpoint."""
        self._staged = None


class Memory(Protocol):
    @property
    def position(self) -> int: ...

    def keep(self) -> None: ...

    def drop(self) -> None: ...


class Remembering(Projection, Protocol):
    """A projection that stages batches from an `AccountMemory` instead of reading Redis."""

    @property
    def memory(self) -> Memory: ...
