"""The API contract, fuzzed: schemathesis generates requests for every operation of
`/openapi.json` (valid ones, and ones the schema says are invalid), sends them with the
bearer token to a real server on each store, and fails on any 5xx, any status the document
does not list for the operation, and any answer that does not match its schema.

Bounded and deterministic: a few derandomized examples per operation and generation mode, no
shrinking, no example database. Each operation runs twice: with ids nobody owns, and with the
ids of a real experiment, task, environment, iteration and run (so the deeper paths run too).
docs/api.md "How the API is fuzzed" says more."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from api.http.app import INFO
from api.http.openapi import openapi_document
from api.http.routes import ROUTES
from tests.conftest import STORES
from tests.e2e.api_servers import serve_store
from tests.e2e.server import Server, iteration_ended

EXAMPLES_PER_MODE = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    # An operation that needs the token refuses a request without it, or with a wrong one.
    ignored_auth,
]
# Not `negative_data_rejection`: unknown query parameters are ignored, as HTTP APIs do, and it
# counts the token it cannot see (sent as a header here) as missing.
# Small limits: fuzzed repeats and triggers stay cheap, and the limits' answers are fuzzed too.
LIMITS = {"TPC_MAX_RUNS_PER_ITERATION": "20", "TPC_MAX_RUNNING_ITERATIONS": "2"}
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in openapi_document(ROUTES, INFO)["paths"].items()
    for method in item
)


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve_store(request, tmp_path_factory.mktemp("fuzz"), LIMITS)


@pytest.fixture(scope="module")
def schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.fixture(scope="module")
def known_ids(server: Server) -> dict[str, str]:
    """Ids of a real experiment with one completed iteration and its run."""
    with server.client() as api:
        task = api.post("/v1/tasks", json={"name": "t", "prompt": "p"}).json()["id"]
        env = api.post(
            "/v1/environments", json={"name": "e", "agent": {"kind": "scripted"}}
        ).json()["id"]
        exp = api.post(
            "/v1/experiments", json={"name": "x", "task_ids": [task], "env_ids": [env]}
        ).json()["id"]
        assert api.post(f"/v1/experiments/{exp}/iterations").status_code == 201
        iteration_ended(api, f"/v1/experiments/{exp}/iterations/1")
        run = api.get(f"/v1/experiments/{exp}/iterations/1/runs").json()["items"][0]["id"]
    return {"exp_id": exp, "task_id": task, "env_id": env, "run_id": run, "n": "1"}


def fuzz(server: Server, operation: Any, path_parameters: dict[str, str] | None) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @settings(
            max_examples=EXAMPLES_PER_MODE,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: Any) -> None:
            case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)

        check()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_keeps_its_contract(
    server: Server, schema: Any, known_ids: dict[str, str], method: str, path: str
) -> None:
    operation = schema[path][method]
    fuzz(server, operation, None)
    named = {name: value for name, value in known_ids.items() if "{" + name + "}" in path}
    if named:
        fuzz(server, operation, named)
    # The server is still healthy after the operation's examples.
    assert httpx.get(f"{server.url}/healthz").status_code == 200
