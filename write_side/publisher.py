"""The seam between the write side and the projections: told after every commit.

The write side only announces; it never waits for or reads the read side. A publisher must never
raise: the command has committed, and the projectors' periodic sweep catches up whatever a lost
announcement missed.
"""

from __future__ import annotations

from typing import Protocol


class EventPublisher(Protocol):
    async def events_committed(self, stream_id: str, last_position: int) -> None:
        """Called once after each successful append, with the position of its last event."""

    async def close(self) -> None:
        """Release connections; called on shutdown."""


class NoPublisher:
    """For a write side with no projections attached (tests of the write side alone)."""

    async def events_committed(self, stream_id: str, last_position: int) -> None:
        return None

    async def close(self) -> None:
        return None
