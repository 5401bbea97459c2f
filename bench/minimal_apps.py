"""The ceilings of the HTTP benchmarks: the least a Litestar app can do for the same request.

`create_post_app` decodes the deposit body into the write API's own msgspec Struct and answers a
small Struct; `create_get_app` answers the balance route with a constant Struct. Neither touches a
database or Redis: what they cost is the framework, the server and the load generator.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, get, post

from write_side.api.schemas import AmountRequest, CommandResponse


class BalanceAnswer(msgspec.Struct):
    account_id: str
    balance: str
    position: int


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@post("/accounts/{account_id:str}/deposit", status_code=200)
async def deposit(account_id: str, data: AmountRequest) -> CommandResponse:
    return CommandResponse(account_id, 1, 1, str(data.amount))


@get("/accounts/{account_id:str}/balance")
async def balance(account_id: str) -> BalanceAnswer:
    return BalanceAnswer(account_id, "0.00", 1)


def create_post_app() -> Litestar:
    return Litestar(route_handlers=[deposit, health], openapi_config=None, debug=False)


def create_get_app() -> Litestar:
    return Litestar(route_handlers=[balance, health], openapi_config=None, debug=False)
