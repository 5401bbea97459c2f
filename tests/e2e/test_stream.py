"""The change feed end to end: real write API, worker and query API processes, and `/stream`
read as a browser's EventSource would (Server-Sent Events, `Last-Event-ID` on reconnect)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import redis

from kernel.read_model_layout import BALANCES, ReadModelKeys
from kernel.settings import Settings

pytest_plugins = ["tests.fixtures"]

TIMEOUT_S = 30.0


@dataclass
class Sse:
    event: str
    id: str | None
    data: dict[str, object]


def read_stream(base_url: str, last_event_id: str, done: Callable[[list[Sse]], bool]) -> list[Sse]:
    """Read `/stream` from `last_event_id` until `done(events)` holds (or fail after TIMEOUT_S)."""
    events: list[Sse] = []
    headers = {"Last-Event-ID": last_event_id}
    timeout = httpx.Timeout(TIMEOUT_S)
    with (
        httpx.Client(base_url=base_url, timeout=timeout) as client,
        client.stream("GET", "/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "event" in fields:
                events.append(Sse(fields["event"], fields.get("id"), json.loads(fields["data"])))
                if done(events):
                    return events
            fields = {}
    raise AssertionError("the stream ended before the expected changes arrived")


def in_background(work: Callable[[], list[Sse]]) -> Callable[[], list[Sse]]:
    result: list[list[Sse]] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()

    def join() -> list[Sse]:
        thread.join(TIMEOUT_S)
        assert result, "the subscriber did not finish in time"
        return result[0]

    return join


def balance_positions(events: list[Sse]) -> list[int]:
    return [int(str(e.data["position"])) for e in events if e.event == "balance"]


def covered(events: list[Sse]) -> bool:
    """A `projection` change reports a checkpoint at or past the last balance change seen: the
    batch that carried it is committed (its progress is staged after its balances)."""
    positions = balance_positions(events)
    return bool(positions) and any(
        int(str(e.data["checkpoint"])) >= positions[-1] for e in events if e.event == "projection"
    )


def burst(writes: httpx.Client, accounts: list[str], rounds: int) -> list[int]:
    positions = []
    for n in range(rounds):
        account = accounts[n % len(accounts)]
        reply = writes.post(f"/accounts/{account}/deposit", json={"amount": f"{n + 1}.25"})
        assert reply.status_code == 200, reply.text
        positions.append(reply.json()["position"])
    return positions


def opened(writes: httpx.Client, queries: httpx.Client, accounts: list[str]) -> int:
    position = 0
    for account in accounts:
        reply = writes.post("/accounts", json={"owner": account, "account_id": account})
        assert reply.status_code == 201, reply.text
        position = reply.json()["position"]
    seen = queries.get(f"/accounts/{accounts[-1]}/balance", params={"min_position": position})
    assert seen.status_code == 200
    return int(position)


def test_a_subscriber_sees_every_balance_change_of_a_burst_in_position_order(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    accounts = ["stream-a", "stream-b", "stream-c"]
    start = opened(writes, queries, accounts)
    expected_count = 30
    subscriber = in_background(
        lambda: read_stream(
            str(queries.base_url),
            str(start),
            lambda seen: len(balance_positions(seen)) >= expected_count and covered(seen),
        )
    )

    positions = burst(writes, accounts, expected_count)
    events = subscriber()

    assert balance_positions(events) == positions
    last = {str(e.data["account_id"]): e.data for e in events if e.event == "balance"}
    for account in accounts:
        served = queries.get(f"/accounts/{account}/balance").json()
        assert last[account]["balance"] == served["balance"]
        assert last[account]["available"] == served["available"]
    projection = [e for e in events if e.event == "projection"]
    assert projection, "each committed batch reports the projection's progress"
    assert {p.data["name"] for p in projection} == {"balances"}


def test_a_subscriber_that_reconnects_with_last_event_id_resumes_without_a_gap(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    accounts = ["resume-a", "resume-b"]
    start = opened(writes, queries, accounts)
    positions = burst(writes, accounts, 20)
    url = str(queries.base_url)

    first = read_stream(url, str(start), lambda seen: len(balance_positions(seen)) >= 8)
    resumed_from = first[-1].id
    assert resumed_from is not None
    rest = read_stream(url, resumed_from, lambda seen: positions[-1] in balance_positions(seen))

    assert balance_positions(first) + balance_positions(rest) == positions


def test_a_client_whose_changes_are_no_longer_kept_is_told_to_reset(
    services: tuple[httpx.Client, httpx.Client], settings: Settings, rdb: redis.Redis
) -> None:
    writes, queries = services
    opened(writes, queries, ["reset-a"])
    last = burst(writes, ["reset-a"], 5)[-1]
    queries.get("/accounts/reset-a/balance", params={"min_position": last})
    # What the cap (MAXLEN) does to a long feed: the oldest changes are trimmed away.
    rdb.xtrim(
        ReadModelKeys(settings.redis.prefix).generation(BALANCES, 1).changes,
        maxlen=1,
        approximate=False,
    )

    events = read_stream(str(queries.base_url), "0", lambda seen: bool(seen))

    assert events[0].event == "reset"
