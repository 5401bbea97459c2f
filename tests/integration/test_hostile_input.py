"""Hostile input to both APIs: wrong content types, oversized and chunked bodies, loosely typed JSON,
over-long strings and numbers in every place a client controls. Each is a 4xx with the stable
`{"error", "detail"}` body that gives nothing away (no traceback, SQL, driver or file path), and a
refused command appends nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from kernel.settings import Settings
from read_side.api.app import create_query_app
from tests.integration.write_api_client import store_of, write_api
from tests.support import free_port, read_side_settings, start_bank, stop, wait_until

Client = AsyncTestClient[Litestar]
JSON = {"content-type": "application/json"}
LEAKS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "psycopg",
    "asyncpg",
    "sqlite",
    "redis.",
    "/work/",
    ".py",
)
COMMANDS = [
    ("/accounts", b'{"owner": "Eve"}'),
    ("/accounts/acc-1/deposit", b'{"amount": "1.00"}'),
    ("/accounts/acc-1/withdraw", b'{"amount": "1.00"}'),
    ("/accounts/acc-1/close", b'{"expected_version": 2}'),
]


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    """The stable error body, and nothing in it (or anywhere in the answer) about our insides."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    for leak in LEAKS:
        assert leak not in response.text, f"{leak!r} in {response.text}"


# --- the write API ------------------------------------------------------------------------------


@pytest.fixture
async def writes(sqlite_url: str) -> AsyncIterator[Client]:
    async with write_api(sqlite_url) as client:
        opened = await client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"})
        deposited = await client.post("/accounts/acc-1/deposit", json={"amount": "50.00"})
        assert (opened.status_code, deposited.status_code) == (201, 200)
        yield client


async def refused_and_nothing_appended(
    client: Client, status: int, code: str, path: str, body: bytes, headers: dict[str, str | bytes]
) -> None:
    head = await store_of(client).head_position()

    response = await client.post(path, content=body, headers=headers)

    assert_refused(response, status, code)
    assert await store_of(client).head_position() == head


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/json",
        "application/jsonp",
        "application/json, text/plain",
        "application/json; charset=utf-16",
        "application/json\x00",
    ],
)
async def test_a_command_body_not_sent_as_json_is_415_and_appends_nothing(
    writes: Client, content_type: str | None
) -> None:
    headers: dict[str, str | bytes] = {} if content_type is None else {"content-type": content_type}
    for path, body in COMMANDS:
        await refused_and_nothing_appended(
            writes, 415, "unsupported_media_type", path, body, headers
        )


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON", "application/json; charset=UTF-8"]
)
async def test_json_with_or_without_a_utf8_charset_is_accepted(
    writes: Client, content_type: str
) -> None:
    response = await writes.post(
        "/accounts/acc-1/deposit",
        content=b'{"amount": "1.00"}',
        headers={"content-type": content_type},
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/accounts/acc-1/deposit", b'{"amount": "1.00", "expected_version": "2"}'),
        ("/accounts/acc-1/withdraw", b'{"amount": "1.00", "expected_version": true}'),
        ("/accounts/acc-1/close", b'{"expected_version": "2"}'),
        ("/accounts", b'{"owner": "Eve", "expected_version": "0"}'),
        ("/accounts", b'{"owner": ["Eve"]}'),
        ("/accounts", b'{"owner": "Eve", "account_id": 12345}'),
        ("/accounts/acc-1/deposit", b'{"amount": true}'),
    ],
    ids=lambda value: value if isinstance(value, str) else value.decode(),
)
async def test_json_values_of_the_wrong_type_are_400_not_coerced(
    writes: Client, path: str, body: bytes
) -> None:
    await refused_and_nothing_appended(writes, 400, "validation_error", path, body, JSON)


@pytest.mark.parametrize(
    "number", ["1.000000000000000001", "0.30000000000000004", "9.999999999999999999"]
)
async def test_a_json_number_amount_is_read_exactly_so_hidden_decimals_are_refused(
    writes: Client, number: str
) -> None:
    body = b'{"amount": ' + number.encode() + b"}"
    await refused_and_nothing_appended(
        writes, 422, "validation_error", "/accounts/acc-1/deposit", body, JSON
    )


async def test_a_json_number_amount_is_accepted_exactly(writes: Client) -> None:
    response = await writes.post(
        "/accounts/acc-1/deposit", content=b'{"amount": 10.10}', headers=JSON
    )

    assert response.status_code == 200, response.text
    assert response.json()["balance"] == "60.10"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/accounts", b'{"owner": "' + b"o" * 201 + b'"}', 400),
        ("/accounts", b'{"owner": "' + b"o" * 15_000 + b'"}', 400),
        ("/accounts", b'{"owner": "Eve", "account_id": "' + b"a" * 65 + b'"}', 400),
        ("/accounts", b'{"owner": "Eve", "currency": "USDOLLAR"}', 400),
        ("/accounts", b'{"owner": "Eve", "' + b"k" * 10_000 + b'": 1}', 400),
        ("/accounts/" + "a" * 65 + "/deposit", b'{"amount": "1.00"}', 404),
        ("/accounts/" + "a" * 5_000 + "/close", b"{}", 404),
    ],
    ids=[
        "owner 201",
        "owner 15000",
        "account_id 65",
        "currency",
        "field name",
        "path 65",
        "path 5000",
    ],
)
async def test_over_long_strings_in_a_command_are_refused_and_append_nothing(
    writes: Client, path: str, body: bytes, status: int
) -> None:
    code = "validation_error" if status == 400 else "account_not_found"
    await refused_and_nothing_appended(writes, status, code, path, body, JSON)


@pytest.mark.parametrize(
    "key",
    [
        b"k" * 201,
        b"k" * 8_000,
        "cl\u00e9".encode("latin-1"),
        "ключ".encode(),
        b"a\x7fb",
        b"a b",
        b"\t",
    ],
    ids=["201", "8000", "latin-1", "utf-8", "DEL", "space", "tab"],
)
async def test_a_hostile_idempotency_key_is_422_and_appends_nothing(
    writes: Client, key: bytes
) -> None:
    headers: dict[str, str | bytes] = {**JSON, "Idempotency-Key": key}
    await refused_and_nothing_appended(
        writes, 422, "validation_error", "/accounts/acc-1/deposit", b'{"amount": "1"}', headers
    )


@pytest.mark.parametrize(
    "query",
    ["after_version=" + "9" * 5_000, "after_version=" + "9" * 30, "limit=" + "9" * 30, "limit=-1"],
    ids=["5000 digits", "30 digits", "huge limit", "negative limit"],
)
async def test_huge_numbers_in_the_audit_trail_query_are_400(writes: Client, query: str) -> None:
    response = await writes.get(f"/accounts/acc-1/events?{query}")

    assert_refused(response, 400, "validation_error")


@pytest.fixture
def write_api_process(
    sqlite_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, Settings]]:
    """A real `bank write-api` (granian): chunked bodies are the server's business too."""
    settings = read_side_settings(sqlite_url, redis_url, redis_prefix)
    port = free_port()
    process = start_bank(["write-api", "--port", str(port)], settings, tmp_path / "write-api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/health"), 30, "the write API to answer")
        yield url, settings
    finally:
        stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_chunked_body_over_16_kib_without_content_length_is_413_and_appends_nothing(
    write_api_process: tuple[str, Settings],
) -> None:
    url, _ = write_api_process
    with httpx.Client(base_url=url, timeout=10) as client:
        opened = client.post("/accounts", json={"owner": "Ada", "account_id": "acc-1"})
        assert opened.status_code == 201
        head = opened.json()["position"]
        padding = [b'{"amount": "1.00", "pad": "'] + [b"x" * 1024] * 17 + [b'"}']

        response = client.post("/accounts/acc-1/deposit", content=iter(padding), headers=JSON)

        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert_refused(response, 413, "request_too_large")
        after = client.post("/accounts/acc-1/deposit", json={"amount": "1.00"})
        assert after.json()["position"] == head + 1  # the refused deposit appended nothing


# --- the query API ------------------------------------------------------------------------------


@pytest.fixture
async def queries(sqlite_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[Client]:
    """The query API on empty read models (it never opens the SQL store)."""
    settings = read_side_settings(sqlite_url, redis_url, redis_prefix)
    async with AsyncTestClient(app=create_query_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/" + "a" * 65 + "/balance",
        "/accounts/" + "a" * 5_000 + "/statement",
        "/accounts?cursor=" + "c" * 2_001,
        "/accounts?cursor=not-a-cursor",
        "/accounts?cursor=%FF%FE%00",
        "/accounts?cursor=eyJ4IjoxfQ",  # base64 JSON, but not a cursor
        "/accounts?sort=owner",
        "/accounts?limit=" + "9" * 30,
        "/accounts/acc-1/statement?before_version=" + "9" * 5_000,
        "/accounts/acc-1/statement?before_version=" + "9" * 30,
        "/accounts/acc-1/balance?min_position=" + "9" * 30,
        "/accounts/acc-1/balance?min_position=-1",
        "/accounts/acc-1/balance?min_position=1&wait_ms=" + "9" * 30,
        "/transfers/" + "t" * 65,
        "/transfers/t-1?min_position=" + "9" * 30,
    ],
    ids=lambda path: path[:60],
)
async def test_over_long_strings_and_huge_numbers_in_a_query_are_400(
    queries: Client, path: str
) -> None:
    response = await queries.get(path)

    assert_refused(response, 400, "validation_error")


async def test_an_unknown_account_is_a_clean_404(queries: Client) -> None:
    response = await queries.get("/accounts/%00%0d%0aSet-Cookie:%20x=1/balance")

    assert_refused(response, 404, "account_not_found")
    assert "set-cookie" not in response.headers


async def test_an_unknown_transfer_with_key_pattern_characters_is_a_clean_404(
    queries: Client,
) -> None:
    response = await queries.get("/transfers/%2A%7B%7D%5B%3F%00%0d%0a")  # *{}[?, NUL, CRLF

    assert_refused(response, 404, "transfer_not_found")
