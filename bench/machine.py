"""The machine a run was measured on: cores, memory, and the versions of Python, PostgreSQL, Redis."""

from __future__ import annotations

import os
import platform
import sys

import psycopg
import redis

from bench.config import PG_ADMIN_URL, REDIS_URL


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _postgres_version() -> str:
    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        fsync = conn.execute("SHOW synchronous_commit").fetchone()
    return f"{row[0] if row else '?'} (synchronous_commit={fsync[0] if fsync else '?'})"


def _redis_version() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        info = client.info("server")
        return str(info.get("redis_version", "?"))
    finally:
        client.close()


def describe() -> str:
    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    return (
        f"{os.cpu_count()} cores ({platform.machine()}), {_memory_gib():.0f} GiB memory, "
        f"{platform.system()} {platform.release()}; Python {python}; "
        f"PostgreSQL {_postgres_version()}; Redis {_redis_version()}"
    )
