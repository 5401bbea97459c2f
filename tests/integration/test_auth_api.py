"""Bearer-token auth on a small Litestar app, with the write API's resolver (SQL, on PostgreSQL and
SQLite) and the query API's (the Redis mirror): who gets 401, 403 and 200, and how fast a revoke
bites."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import redis
from litestar import Litestar, get, post
from litestar.openapi import OpenAPIConfig
from litestar.testing import AsyncTestClient

from auth.guards import requires
from auth.key_store import create_key, revoke_key
from auth.middleware import BearerAuth
from auth.mirror import mirror_api_keys
from auth.mirror_layout import mirror_key
from auth.redis_resolver import RedisKeyResolver
from auth.resolver import KeyResolver
from auth.sql_resolver import SqlKeyResolver
from auth.tokens import ADMIN, READ, WRITE, new_token
from kernel.settings import AuthSettingError, Settings
from tests.support import make_settings, mirror_keys
from write_side.api.errors import EXCEPTION_HANDLERS
from write_side.store.database import create_async_store_engine, create_sync_store_engine


@post("/accounts", guards=[requires(WRITE)], status_code=201)
async def open_account() -> dict[str, str]:
    return {"done": "opened"}


@get("/accounts/{account_id:str}/events", guards=[requires(READ)])
async def account_events() -> dict[str, str]:
    return {"events": "[]"}


@get("/projections", guards=[requires(ADMIN)])
async def projections() -> dict[str, str]:
    return {"status": "ok"}


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def build_app(resolver: KeyResolver, *, enabled: bool | None = None) -> Litestar:
    """`enabled=None`: as the APIs do, from the settings the environment gives."""
    if enabled is None:
        enabled = Settings.from_env().auth.enabled
    return Litestar(
        route_handlers=[open_account, account_events, projections, health],
        plugins=[BearerAuth(resolver, enabled=enabled)],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="auth test", version="1", path="/schema"),
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class KeyedStore:
    """The database and Redis behind one resolver, and the key operations `bank apikey` performs."""

    settings: Settings
    resolver: KeyResolver
    clock: FakeClock = field(default_factory=FakeClock)

    def create(self, name: str, *scopes: str) -> str:
        engine = create_sync_store_engine(self.settings.store.database_url)
        try:
            with engine.begin() as conn:
                token = create_key(conn, name, scopes)
            mirror_api_keys(self.settings, engine=engine)
        finally:
            engine.dispose()
        return token

    def revoke(self, name: str) -> None:
        engine = create_sync_store_engine(self.settings.store.database_url)
        try:
            with engine.begin() as conn:
                assert revoke_key(conn, name)
            mirror_api_keys(self.settings, engine=engine)
        finally:
            engine.dispose()


@pytest.fixture(params=["sql-postgresql", "sql-sqlite", "redis-mirror"])
def keyed(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> KeyedStore:
    url: str = request.getfixturevalue(
        "pg_url" if request.param == "sql-postgresql" else "sqlite_url"
    )
    settings = make_settings(database_url=url, redis_url=redis_url, redis_prefix=redis_prefix)
    clock = FakeClock()
    resolver: KeyResolver
    if request.param == "redis-mirror":
        mirror_keys(settings)
        resolver = RedisKeyResolver.from_settings(settings)
    else:
        resolver = SqlKeyResolver(lambda: create_async_store_engine(url), ttl_s=5.0, clock=clock)
    return KeyedStore(settings, resolver, clock)


@pytest.fixture
async def client(keyed: KeyedStore) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=build_app(keyed.resolver, enabled=True)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.post("/accounts")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    assert "Bearer" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    ["Bearer " + new_token(), "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer", "bank_x"],
)
async def test_an_unknown_or_malformed_token_is_401(
    client: AsyncTestClient[Litestar], header: str
) -> None:
    response = await client.get("/accounts/alice/events", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"error", "detail"}


async def test_a_key_reaches_what_its_scopes_allow_and_gets_403_elsewhere(
    client: AsyncTestClient[Litestar], keyed: KeyedStore
) -> None:
    writer = bearer(keyed.create("writer", WRITE))
    reader = bearer(keyed.create("reader", READ))

    assert (await client.post("/accounts", headers=writer)).status_code == 201
    assert (await client.get("/accounts/a/events", headers=reader)).status_code == 200
    refused = await client.get("/accounts/a/events", headers=writer)
    assert refused.status_code == 403
    assert refused.json() == {"error": "forbidden", "detail": "this API key lacks the 'read' scope"}
    assert (await client.post("/accounts", headers=reader)).status_code == 403
    assert (await client.get("/projections", headers=reader)).status_code == 403


async def test_an_admin_key_reaches_everything(
    client: AsyncTestClient[Litestar], keyed: KeyedStore
) -> None:
    admin = bearer(keyed.create("ops", ADMIN))

    assert (await client.post("/accounts", headers=admin)).status_code == 201
    assert (await client.get("/accounts/a/events", headers=admin)).status_code == 200
    assert (await client.get("/projections", headers=admin)).status_code == 200


async def test_health_and_the_openapi_docs_need_no_token(
    client: AsyncTestClient[Litestar],
) -> None:
    assert (await client.get("/health")).status_code == 200
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert (await client.get("/schema")).status_code == 200


async def test_the_openapi_schema_documents_the_bearer_scheme(
    client: AsyncTestClient[Litestar],
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()

    assert schema["components"]["securitySchemes"]["BearerToken"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert {"BearerToken": []} in schema["security"]


async def test_a_revoked_key_is_refused_once_the_cache_has_expired(
    client: AsyncTestClient[Litestar], keyed: KeyedStore
) -> None:
    reader = bearer(keyed.create("leaky", READ))
    assert (await client.get("/accounts/a/events", headers=reader)).status_code == 200

    keyed.revoke("leaky")
    if isinstance(keyed.resolver, SqlKeyResolver):
        # The write API trusts its cache for the TTL, then asks the database again.
        assert (await client.get("/accounts/a/events", headers=reader)).status_code == 200
        keyed.clock.now += 5.01

    assert (await client.get("/accounts/a/events", headers=reader)).status_code == 401


@pytest.fixture
def mirrored(redis_url: str, redis_prefix: str, sqlite_url: str) -> KeyedStore:
    settings = make_settings(
        database_url=sqlite_url, redis_url=redis_url, redis_prefix=redis_prefix
    )
    mirror_keys(settings)
    return KeyedStore(settings, RedisKeyResolver.from_settings(settings))


async def test_a_lost_mirror_answers_503_until_it_is_rebuilt_from_sql(
    mirrored: KeyedStore, redis_url: str
) -> None:
    reader = bearer(mirrored.create("reader", READ))
    admin = bearer(mirrored.create("ops", ADMIN))
    with redis.Redis.from_url(redis_url) as direct:
        direct.delete(mirror_key(mirrored.settings.redis.prefix))  # as after a Redis restart

    async with AsyncTestClient(app=build_app(mirrored.resolver, enabled=True)) as client:
        lost = await client.get("/accounts/a/events", headers=reader)
        assert lost.status_code == 503
        assert lost.json()["error"] == "auth_unavailable"
        assert lost.headers["retry-after"] == "1"

        assert mirror_keys(mirrored.settings) == 2

        assert (await client.get("/accounts/a/events", headers=reader)).status_code == 200
        assert (await client.get("/projections", headers=admin)).status_code == 200


async def test_an_unreachable_key_store_is_503_not_401(sqlite_url: str) -> None:
    resolver = RedisKeyResolver("redis://127.0.0.1:1/0", "nowhere")

    async with AsyncTestClient(app=build_app(resolver, enabled=True)) as client:
        response = await client.get("/projections", headers=bearer(new_token()))

    assert response.status_code == 503
    assert response.json()["error"] == "auth_unavailable"


async def test_bank_auth_off_lets_every_request_through_and_warns_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BANK_AUTH", "off")
    resolver = RedisKeyResolver("redis://127.0.0.1:1/0", "never-opened")
    warnings = RecordedWarnings()
    logging.getLogger("auth.middleware").addHandler(warnings)
    try:
        async with AsyncTestClient(app=build_app(resolver)) as client:
            assert (await client.post("/accounts")).status_code == 201
            assert (await client.get("/projections")).status_code == 200
    finally:
        logging.getLogger("auth.middleware").removeHandler(warnings)

    assert any("authentication is OFF" in message for message in warnings.messages)


class RecordedWarnings(logging.Handler):
    """Litestar reconfigures logging at startup, so caplog's root handler would miss the record."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_unclear_bank_auth_value_stops_the_app_from_being_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BANK_AUTH", "maybe")

    with pytest.raises(AuthSettingError):
        build_app(RedisKeyResolver("redis://127.0.0.1:1/0", "never-opened"))


async def test_auth_is_on_when_bank_auth_is_unset(
    monkeypatch: pytest.MonkeyPatch, mirrored: KeyedStore
) -> None:
    monkeypatch.delenv("BANK_AUTH", raising=False)

    async with AsyncTestClient(app=build_app(mirrored.resolver)) as client:
        assert (await client.get("/projections")).status_code == 401
