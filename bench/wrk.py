"""The HTTP load generator: wrk (C, one thread, keep-alive connections) driven by a Lua script.

wrk runs in its own process and costs far less CPU per request than any Python client, which
matters on a 2-core machine where the load generator shares the cores with the server under test.
The same generator, connection count and duration are used for a target and its ceilings, so their
ratio is fair even though the absolute numbers move with the machine's other load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONNECTIONS = 32
TIMEOUT = "5s"

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

_DEPOSITS = """
local accounts = {accounts}
local headers = {{["Content-Type"] = "application/json"}}
local body = '{{"amount": "1.00"}}'
math.randomseed(os.time())
request = function()
  local path = string.format("/accounts/acct-%04d/deposit", math.random(0, accounts - 1))
  return wrk.format("POST", path, headers, body)
end
"""

_BALANCES = """
local accounts = {accounts}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/accounts/acct-%04d/balance", math.random(0, accounts - 1)))
end
"""


_TRANSFERS = """
local accounts = {accounts}
local headers = {{["Content-Type"] = "application/json"}}
local body = '{{"from_account": "acct-%04d", "to_account": "acct-%04d", "amount": "1.00"}}'
math.randomseed(os.time())
request = function()
  local from = math.random(0, accounts - 1)
  local to = (from + math.random(1, accounts - 1)) % accounts
  return wrk.format("POST", "/transfers", headers, string.format(body, from, to))
end
"""

_SCRIPTS = {"deposits": _DEPOSITS, "balances": _BALANCES, "transfers": _TRANSFERS}


class WrkMissing(RuntimeError):
    """wrk is not installed (`make bench` installs it: apt-get install -y wrk)."""


def account_id(n: int) -> str:
    """The ids the Lua scripts address: acct-0000 ... acct-0999."""
    return f"acct-{n:04d}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    ok: int
    """Completed responses with a 2xx status (wrk counts status >= 400 apart; we send no 3xx)."""
    failed: int
    """Responses with status >= 400 plus connect/read/write errors and timeouts."""
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _script(kind: str, accounts: int) -> str:
    return _SCRIPTS[kind].format(accounts=accounts) + _DONE


def run_wrk(
    url: str, kind: str, seconds: float, accounts: int, connections: int = CONNECTIONS
) -> LoadResult:
    """Drive `url` with `kind` ("deposits", "transfers" or "balances") requests for `seconds` (at least 1),
    spread at random over the first `accounts` accounts (a transfer: between two different
    ones), from `connections` connections."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed: run `make bench` or `apt-get install -y wrk`")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / f"{kind}.lua"
        script.write_text(_script(kind, accounts))
        command = [
            wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={TIMEOUT}", "-s", str(script), url,
        ]  # fmt: skip
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        ok=raw["requests"] - raw["status_errors"],
        failed=raw["status_errors"] + raw["socket_errors"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )
