"""The REST API of a real `tpc serve` (subprocess, SQLite): auth, errors, OpenAPI."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import TPC, Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("api")).start()
    yield running
    running.stop()


def test_health_needs_no_token(server: Server) -> None:
    import httpx

    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok"
    assert set(health["projection"]) == {"position", "head", "lag", "failures"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("Bearer wrong", "unknown API token"),
        ("Basic abc", "missing bearer token"),
    ],
)
def test_requests_without_a_valid_token_are_401(
    server: Server, header: str | None, message: str
) -> None:
    import httpx

    headers = {"Authorization": header} if header else {}
    response = httpx.get(f"{server.url}/v1/experiments", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/experiments?limit=abc",
        "/v1/experiments/exp_x/iterations/abc/results",
        "/v1/experiments/exp_x/iterations/1/results?confidence=2",
        "/v1/experiments/exp_x/iterations/1/runs?cursor=x",
        "/v1/experiments/exp_%00/history",
        "/v1/runs/run_x/logs?after=-1",
    ],
)
def test_a_bad_token_is_401_before_the_request_is_read(server: Server, path: str) -> None:
    """What a caller without a valid token sent is not looked at: no 422 tells them how a
    path or query would be read."""
    import httpx

    response = httpx.get(f"{server.url}{path}", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401, response.text
    with server.client() as api:
        assert api.get(path).status_code == 422, path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/tasks"),
        ("POST", "/v1/environments"),
        ("POST", "/v1/experiments"),
        ("PATCH", "/v1/experiments/exp_x"),
        ("PUT", "/v1/secrets/KEY"),
    ],
)
@pytest.mark.parametrize("body", [b"{not json", b'{"name": 5}'])
def test_a_bad_token_is_401_before_the_body_is_read(
    server: Server, method: str, path: str, body: bytes
) -> None:
    """The token's check and the body's in one thread hop: the token still comes first."""
    import httpx

    headers = {"Authorization": "Bearer wrong", "Content-Type": "application/json"}
    response = httpx.request(method, f"{server.url}{path}", headers=headers, content=body)
    assert response.status_code == 401, response.text
    with server.client() as api:
        answer = api.request(method, path, content=body)
        assert answer.status_code == 422, answer.text


def test_unknown_ids_are_404(server: Server) -> None:
    with server.client() as api:
        for path in (
            "/v1/experiments/exp_nope",
            "/v1/tasks/task_nope",
            "/v1/runs/run_nope",
            "/v1/environments/env_nope",
            "/v1/experiments/exp_nope/iterations/1",
        ):
            response = api.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"


def test_invalid_config_is_422_with_the_validators_located_messages(server: Server) -> None:
    config = (Path(__file__).parents[2] / "examples" / "seed-signals.yaml").read_text()
    broken = config.replace("    fold:\n      fn: count\n", "")
    with server.client() as api:
        before = api.get("/v1/experiments").json()["items"]
        response = api.post("/v1/experiments", json={"name": "x", "signal_config": broken})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["problems"] == [
            {"loc": "signals[0].fold", "message": "required for message-scoped signals"}
        ]
        not_yaml = api.post("/v1/experiments", json={"name": "x", "signal_config": "a: ["})
        assert not_yaml.status_code == 422
        assert "not valid YAML" in not_yaml.json()["error"]["message"]
        # Nothing partial was recorded by the rejected commands.
        assert api.get("/v1/experiments").json()["items"] == before


def test_trigger_without_tasks_is_409(server: Server) -> None:
    with server.client() as api:
        exp = api.post("/v1/experiments", json={"name": "empty"}).json()
        response = api.post(f"/v1/experiments/{exp['id']}/iterations")
        assert response.status_code == 409
        assert "has no tasks" in response.json()["error"]["message"]
        assert api.get(f"/v1/experiments/{exp['id']}").json()["iterations"] == 0


def test_malformed_json_and_bad_parameters_are_422(server: Server) -> None:
    with server.client() as api:
        response = api.post(
            "/v1/tasks", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        task = api.post("/v1/tasks", json={"name": "", "prompt": "p"})
        assert task.status_code == 422
        assert task.json()["error"]["problems"] == [{"loc": "name", "message": "must not be empty"}]
        assert api.get("/v1/tasks?limit=abc").status_code == 422


def test_lists_are_paginated(server: Server) -> None:
    with server.client() as api:
        for i in range(5):
            api.post("/v1/tasks", json={"name": f"page {i}", "prompt": "p"})
        first = api.get("/v1/tasks?limit=2").json()
        second = api.get(f"/v1/tasks?limit=2&cursor={first['next_cursor']}").json()
        assert len(first["items"]) == 2
        assert first["next_cursor"] is not None
        assert {t["id"] for t in first["items"]}.isdisjoint(t["id"] for t in second["items"])


def check_operation(
    path: str, method: str, operation: dict[str, Any], schemas: dict[str, Any]
) -> None:
    """One operation names its path parameters, its errors and its body's schema."""
    where = f"{method.upper()} {path}"
    assert operation["summary"], where
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    assert declared == set(re.findall(r"{(\w+)}", path)), where
    responses = operation["responses"]
    assert {"401", "422", "500"} <= set(responses), where
    for status, response in responses.items():
        schema = response["content"]["application/json"]["schema"]
        if int(status) >= 400:
            assert schema == {"$ref": "#/components/schemas/Error"}, where
    if "requestBody" in operation:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.removeprefix("#/components/schemas/") in schemas
        assert "413" in responses, where


def test_openapi_describes_every_operation(server: Server) -> None:
    import httpx

    from api.http.routes import ROUTES

    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = document["paths"]
    served = {(route.path, method.lower()) for route in ROUTES for method in route.methods or ()}
    served -= {(path, "head") for path, _ in served}
    described = {(path, method) for path, item in paths.items() for method in item}
    assert described == served
    assert len(described) >= 27
    schemas = document["components"]["schemas"]
    for path, method in described:
        check_operation(path, method, paths[path][method], schemas)
    takes_a_body = {
        (path, method)
        for path, method in described
        if method in ("post", "patch", "put") and not path.endswith(("/iterations", "/cancel"))
    }
    assert takes_a_body == {
        (path, method) for path, method in described if "requestBody" in paths[path][method]
    }
    assert "429" in paths["/v1/experiments/{exp_id}/iterations"]["post"]["responses"]
    patch = schemas["ExperimentUpdate"]
    assert patch["additionalProperties"] is False
    assert patch["properties"]["repeats"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "title": "Repeats",
        "description": "Runs of each task × environment in an iteration.",
    }
    # Every key is a name, never prose leaking from a docstring.
    keys: list[str] = []

    def collect(value: object) -> None:
        if isinstance(value, dict):
            keys.extend(value)
            for child in value.values():
                collect(child)
        elif isinstance(value, list):
            for child in value:
                collect(child)

    collect({k: v for k, v in document.items() if k != "paths"})
    for item in paths.values():
        collect(item)
    assert not [key for key in keys if " " in key]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TPC_DATABASE_URL": "mysql://db/x"}, "unsupported TPC_DATABASE_URL 'mysql://db/x'"),
        ({"TPC_CONCURRENCY": "many"}, "TPC_CONCURRENCY must be a positive number"),
        ({"TPC_MAX_BODY_BYTES": "16MiB"}, "TPC_MAX_BODY_BYTES must be a positive number"),
    ],
)
def test_bad_settings_are_one_clear_error(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    server = Server(tmp_path)
    done = subprocess.run(
        [TPC, "serve", "--port", str(server.port)],
        env={**server.env, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_an_experiments_name_repeats_and_config_problems_come_in_one_answer(
    server: Server,
) -> None:
    config = (Path(__file__).parents[2] / "examples" / "seed-signals.yaml").read_text()
    broken = config.replace("    fold:\n      fn: count\n", "")
    with server.client() as api:
        response = api.post(
            "/v1/experiments", json={"name": " ", "repeats": 0, "signal_config": broken}
        )
        assert response.status_code == 422
        assert [p["loc"] for p in response.json()["error"]["problems"]] == [
            "name",
            "repeats",
            "signals[0].fold",
        ]
