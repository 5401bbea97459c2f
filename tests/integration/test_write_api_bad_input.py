"""Bad input of every kind is a 4xx JSON error with the stable shape, never a 500, and appends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.write_api_client import assert_error, racing_client, store_of, write_api

Client = AsyncTestClient[Litestar]
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class BadRequest:
    name: str
    path: str
    body: bytes | None
    status: int
    code: str = "validation_error"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=lambda: JSON)


def amount(raw: str) -> bytes:
    return b'{"amount": ' + raw.encode() + b"}"


DEPOSIT = "/accounts/acc-1/deposit"
WITHDRAW = "/accounts/acc-1/withdraw"

BAD_REQUESTS = [
    # malformed or mistyped JSON
    BadRequest("malformed json", DEPOSIT, b'{"amount": ', 400),
    BadRequest("not an object", DEPOSIT, b"[1, 2]", 400),
    BadRequest("empty body", DEPOSIT, b"", 400),
    BadRequest("utf-16 body", DEPOSIT, '{"amount": "1"}'.encode("utf-16"), 400),
    BadRequest("nan literal", DEPOSIT, amount("NaN"), 400),
    BadRequest("amount is a bool", DEPOSIT, amount("true"), 400),
    BadRequest("amount is null", DEPOSIT, amount("null"), 400),
    BadRequest("amount is a list", DEPOSIT, amount("[1]"), 400),
    BadRequest("amount is an object", WITHDRAW, amount('{"v": 1}'), 400),
    BadRequest("owner is a number", "/accounts", b'{"owner": 5}', 400),
    BadRequest(
        "expected_version is a float", DEPOSIT, b'{"amount": "1", "expected_version": 1.5}', 400
    ),
    # amounts the rules refuse
    BadRequest("negative amount", DEPOSIT, amount('"-1.00"'), 422),
    BadRequest("negative number", WITHDRAW, amount("-5"), 422),
    BadRequest("zero amount", DEPOSIT, amount('"0.00"'), 422),
    BadRequest("zero number", WITHDRAW, amount("0"), 422),
    BadRequest("nan string", DEPOSIT, amount('"NaN"'), 422),
    BadRequest("infinity string", DEPOSIT, amount('"Infinity"'), 422),
    BadRequest("minus infinity", WITHDRAW, amount('"-Infinity"'), 422),
    BadRequest("huge string", DEPOSIT, amount('"1000000000.01"'), 422),
    BadRequest("huge exponent", DEPOSIT, amount('"1e999999999"'), 422),
    BadRequest("huge integer", DEPOSIT, amount("1" + "0" * 40), 422),
    # decoded exactly as a Decimal from its text (never a float), so too large rather than malformed
    BadRequest("number beyond any float", DEPOSIT, amount("1e400"), 422),
    BadRequest("three decimals", DEPOSIT, amount('"1.001"'), 422),
    BadRequest("three decimals number", WITHDRAW, amount("0.005"), 422),
    BadRequest("tiny exponent", DEPOSIT, amount('"1e-999999999"'), 422),
    BadRequest("not a number", DEPOSIT, amount('"12,50"'), 422),
    # strings Decimal() reads but the documented grammar (digits, at most two decimals) does not
    BadRequest("underscore in amount", DEPOSIT, amount('"1_000"'), 422),
    BadRequest("exponent in amount string", DEPOSIT, amount('"1e2"'), 422),
    BadRequest("spaces around amount", DEPOSIT, amount('"  5 "'), 422),
    BadRequest("arabic-indic digits", DEPOSIT, amount('"\u0661\u0662"'), 422),
    BadRequest("full-width digits", WITHDRAW, amount('"\uff11\uff12"'), 422),
    BadRequest("plus sign", DEPOSIT, amount('"+5"'), 422),
    BadRequest("trailing newline in amount", DEPOSIT, amount('"5\\n"'), 422),
    # missing and unknown fields
    BadRequest("missing amount", DEPOSIT, b"{}", 400),
    BadRequest("missing owner", "/accounts", b'{"currency": "USD"}', 400),
    BadRequest("unknown field", DEPOSIT, b'{"amount": "1", "memo": "x"}', 400),
    BadRequest("unknown field on close", "/accounts/acc-1/close", b'{"force": true}', 400),
    BadRequest("unknown field on open", "/accounts", b'{"owner": "A", "balance": "9"}', 400),
    BadRequest(
        "negative expected_version", DEPOSIT, b'{"amount": "1", "expected_version": -1}', 400
    ),
    BadRequest(
        "giant expected_version", DEPOSIT, b'{"amount": "1", "expected_version": 2147483648}', 400
    ),
    # fields out of range
    BadRequest("empty owner", "/accounts", b'{"owner": ""}', 400),
    BadRequest("blank owner", "/accounts", b'{"owner": "   "}', 422),
    BadRequest("over-long owner", "/accounts", b'{"owner": "' + b"x" * 201 + b'"}', 400),
    BadRequest("owner with a nul character", "/accounts", b'{"owner": "a\\u0000b"}', 422),
    BadRequest("owner with a lone surrogate", "/accounts", b'{"owner": "a\\ud800b"}', 400),
    BadRequest("lower-case currency", "/accounts", b'{"owner": "A", "currency": "usd"}', 400),
    BadRequest(
        "over-long account_id",
        "/accounts",
        b'{"owner": "A", "account_id": "' + b"a" * 65 + b'"}',
        400,
    ),
    BadRequest("account_id with a slash", "/accounts", b'{"owner": "A", "account_id": "a/b"}', 400),
    BadRequest("empty account_id", "/accounts", b'{"owner": "A", "account_id": ""}', 400),
    # a final newline: Python's `$` alone lets it through a pattern
    BadRequest(
        "account_id with a trailing newline",
        "/accounts",
        b'{"owner": "A", "account_id": "nl1\\n"}',
        400,
    ),
    BadRequest(
        "64-character account_id with a trailing newline",
        "/accounts",
        b'{"owner": "A", "account_id": "' + b"a" * 64 + b'\\n"}',
        400,
    ),
    BadRequest(
        "currency with a trailing newline",
        "/accounts",
        b'{"owner": "A", "currency": "USD\\n"}',
        400,
    ),
    BadRequest(
        "account in path with a trailing newline",
        "/accounts/acc-1%0A/deposit",
        amount('"1"'),
        404,
        "account_not_found",
    ),
    # the idempotency key
    BadRequest(
        "over-long idempotency key",
        DEPOSIT,
        amount('"1"'),
        422,
        headers={**JSON, "Idempotency-Key": "k" * 201},
    ),
    BadRequest(
        "idempotency key with a space",
        DEPOSIT,
        amount('"1"'),
        422,
        headers={**JSON, "Idempotency-Key": "a b"},
    ),
    BadRequest(
        "empty idempotency key",
        DEPOSIT,
        amount('"1"'),
        422,
        headers={**JSON, "Idempotency-Key": ""},
    ),
    # unknown accounts, bad paths and queries
    BadRequest(
        "unknown account", "/accounts/nobody/deposit", amount('"1"'), 404, "account_not_found"
    ),
    BadRequest(
        "over-long account in path",
        f"/accounts/{'a' * 65}/withdraw",
        amount('"1"'),
        404,
        "account_not_found",
    ),
    BadRequest("strange account in path", "/accounts/a%00b/close", None, 404, "account_not_found"),
    BadRequest("limit zero", "/accounts/acc-1/events?limit=0", None, 400, method="GET"),
    BadRequest("limit too big", "/accounts/acc-1/events?limit=1001", None, 400, method="GET"),
    BadRequest(
        "negative after_version", "/accounts/acc-1/events?after_version=-1", None, 400, method="GET"
    ),
    BadRequest(
        "after_version not a number",
        "/accounts/acc-1/events?after_version=x",
        None,
        400,
        method="GET",
    ),
    # transport
    BadRequest(
        "oversized body",
        DEPOSIT,
        b'{"amount": "1", "pad": "' + b"a" * 17_000 + b'"}',
        413,
        "request_too_large",
    ),
    BadRequest("unknown route", "/accounts/acc-1/transfer", amount('"1"'), 404, "not_found"),
    BadRequest("wrong method", DEPOSIT, amount('"1"'), 405, "method_not_allowed", method="PUT"),
]


async def prepared(client: Client) -> int:
    """An account with money and history, so that a bad request had something it could change."""
    opened = await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"})
    deposited = await client.post(DEPOSIT, json={"amount": "50.00"})
    assert (opened.status_code, deposited.status_code) == (201, 200)
    return await store_of(client).head_position()


async def send(client: Client, bad: BadRequest) -> None:
    response = await client.request(bad.method, bad.path, content=bad.body, headers=bad.headers)
    assert_error(response, bad.status, bad.code)


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[Client]:
    async with write_api(sqlite_url) as client:
        yield client


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=lambda bad: bad.name)
async def test_bad_input_is_a_4xx_json_error_and_appends_nothing(
    client: Client, bad: BadRequest
) -> None:
    head = await prepared(client)

    await send(client, bad)

    assert await store_of(client).head_position() == head
    balance = await client.post(DEPOSIT, json={"amount": "0.01"})
    assert balance.json()["balance"] == "50.01"


@pytest.mark.postgres
async def test_bad_input_is_a_4xx_json_error_and_appends_nothing_on_postgresql(pg_url: str) -> None:
    async with write_api(pg_url) as client:
        head = await prepared(client)
        failures = []
        for bad in BAD_REQUESTS:
            try:
                await send(client, bad)
            except AssertionError as problem:
                failures.append(f"{bad.name}: {problem}")

        assert failures == []
        assert await store_of(client).head_position() == head


async def test_an_owner_of_exactly_two_hundred_characters_is_accepted(client: Client) -> None:
    response = await client.post("/accounts", json={"owner": "é" * 200})

    assert response.status_code == 201


async def test_a_body_just_under_sixteen_kib_is_not_refused_for_its_size(client: Client) -> None:
    await prepared(client)
    body = b'{"amount": "1.00", "expected_version": 2' + b" " * 16_000 + b"}"

    response = await client.post(DEPOSIT, content=body, headers=JSON)

    assert len(body) < 16 * 1024
    assert response.status_code == 200, response.text


HOSTILE_OPENS = [
    {"owner": "B", "account_id": "a" * 64 + "\n"},  # overflowed VARCHAR(64) in the store
    {"owner": "B", "account_id": "nl1\n"},
    {"owner": "B", "currency": "USD\n"},
]
HOSTILE_DEPOSITS = [{"amount": raw} for raw in ("1_000", "1e2", "  5 ", "\u0661\u0662")]


@pytest.mark.postgres
async def test_bad_clients_racing_honest_ones_fail_alone_on_postgresql(pg_url: str) -> None:
    """Group commit shares one statement among concurrent commands: a bad command must not take
    the honest commands of its batch down with it."""
    honest_clients, deposits_each, bad_clients = 16, 5, 2
    async with write_api(pg_url) as client, racing_client(client) as racing:
        for n in range(honest_clients):
            opened = await racing.post("/accounts", json={"owner": "H", "account_id": f"h{n}"})
            assert opened.status_code == 201
        honest_done = asyncio.Event()

        async def honest(n: int) -> list[int]:
            statuses = []
            for _ in range(deposits_each):
                response = await racing.post(f"/accounts/h{n}/deposit", json={"amount": "1.00"})
                statuses.append(response.status_code)
            return statuses

        async def bad() -> list[int]:
            statuses = []
            while not honest_done.is_set():
                for body in HOSTILE_OPENS:
                    statuses.append((await racing.post("/accounts", json=body)).status_code)
                for body in HOSTILE_DEPOSITS:
                    response = await racing.post("/accounts/h0/deposit", json=body)
                    statuses.append(response.status_code)
                # A request refused before the store never waits on I/O: let the others run.
                await asyncio.sleep(0)
            return statuses

        bad_tasks = [asyncio.create_task(bad()) for _ in range(bad_clients)]
        honest_statuses = await asyncio.gather(*(honest(n) for n in range(honest_clients)))
        honest_done.set()
        bad_statuses = await asyncio.gather(*bad_tasks)

        assert all(s == 200 for statuses in honest_statuses for s in statuses), honest_statuses
        assert all(400 <= s < 500 for statuses in bad_statuses for s in statuses), bad_statuses
        stored = await store_of(client).read_after(0)
        assert len(stored) == honest_clients * (1 + deposits_each)


@pytest.mark.parametrize("path", [DEPOSIT, "/accounts", "/transfers", "/holds"])
async def test_a_body_left_out_is_told_so_in_words(client: Client, path: str) -> None:
    response = await client.post(path, content=b"", headers=JSON)

    assert_error(response, 400, "validation_error")
    assert response.json()["detail"] == "the request needs a JSON body"
