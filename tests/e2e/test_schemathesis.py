"""Schemathesis against the real `bank write-api` and `bank query-api` processes.

For every operation of each API's own OpenAPI document, data that fits the schema and data that
does not: no answer is a 5xx, and every answer (its status, content type and body) is one the
document describes. Authentication is off here; tests/integration/test_api_auth.py covers it.
The run is bounded (a fixed number of examples per operation, derandomized, so it is repeatable).
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import wait_until

pytest_plugins = ["tests.fixtures"]  # settings, services


def no_server_error(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """not_a_server_error, except the one 5xx that is an answer: the query API's 503
    `projection_behind` (with Retry-After) for a `min_position` the projection has not reached."""
    if response.status_code == 503 and "min_position" in (case.query or {}):
        body = response.json()
        if body.get("error") == "projection_behind" and "retry-after" in response.headers:
            return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 50
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the report names the request as sent
    suppress_health_check=list(HealthCheck),
)


def _no_long_waits(case: Case) -> Case:
    """`min_position` ahead of the projection waits up to `wait_ms` (10 s at most) by design;
    the fuzzer keeps that wait at zero so the run stays short. The answer is then a 503
    `projection_behind`, which the schema documents."""
    if isinstance(case.query, dict) and "min_position" in case.query:
        case.query["wait_ms"] = 0
    return case


def fuzz(base_url: str) -> list[str]:
    """Every operation, positive and negative data; the problems found, one line per operation."""
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    problems = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode).map(_no_long_waits))
            def check(case: Case) -> None:
                case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=15)

            try:
                check()
            except Unsatisfiable:  # no parameters or body: nothing to make invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as failure:  # try every operation, report all
                problems.append(f"{operation.label} [{mode.value}]: {failure}")
    return problems


def _some_history(writes: httpx.Client) -> int:
    """Accounts with money, so that reads and commands find something to answer about."""
    position = 0
    for n in range(3):
        opened = writes.post("/accounts", json={"owner": f"Owner {n}", "account_id": f"acc-{n}"})
        deposited = writes.post(f"/accounts/acc-{n}/deposit", json={"amount": "25.00"})
        assert (opened.status_code, deposited.status_code) == (201, 200), deposited.text
        position = deposited.json()["position"]
    return int(position)


def test_neither_api_answers_a_5xx_or_anything_its_schema_does_not_document(
    services: tuple[httpx.Client, httpx.Client],
) -> None:
    writes, queries = services
    head = _some_history(writes)
    wait_until(
        lambda: queries.get("/accounts/acc-2/balance", params={"min_position": head}).is_success,
        30,
        "the projection of the history",
    )

    problems = fuzz(str(writes.base_url).rstrip("/")) + fuzz(str(queries.base_url).rstrip("/"))

    assert problems == [], "\n\n".join(problems)
