"""Read-your-writes: wait until a projection has applied the position a command returned.

Polling the checkpoint (one HGET) a few milliseconds apart, backing off to 50 ms, keeps the wait
short for the common case (the projector is milliseconds behind) and cheap for the slow one.
"""

from __future__ import annotations

import asyncio
import time

from read_side.errors import ProjectionBehind
from read_side.read_models import ReadModelReader

FIRST_POLL_S = 0.002
LONGEST_POLL_S = 0.05


async def wait_for_position(
    reader: ReadModelReader, projection: str, position: int, wait_ms: int
) -> None:
    """Return once `projection` has reached `position`; ProjectionBehind after `wait_ms`."""
    deadline = time.monotonic() + wait_ms / 1000
    pause = FIRST_POLL_S
    while True:
        checkpoint = await reader.checkpoint(projection)
        if checkpoint >= position:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProjectionBehind(projection, checkpoint, position)
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, LONGEST_POLL_S)
