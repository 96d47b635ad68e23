"""Every write route obeys the rules: sent invalid input (empty or too-long names, repeats 0,
-5 or "abc", unknown ids, wrong types), each answers a 4xx with a located error, never a 500,
and saves nothing (the event log does not move, no secret changes), on each store.

The routes are read from the app's route table, so a new write route without cases here
fails `test_every_write_route_has_cases`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from api.http.app import create_app
from application.service import Service
from domain.experiments import MAX_NAME_LENGTH
from infra.settings import Settings
from tests.conftest import STORES
from tests.e2e.api_servers import empty_postgres

TOKEN = "rules-token"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
LONG = "n" * (MAX_NAME_LENGTH + 1)
# Placeholders the fixture replaces with the ids it created.
EXP, TASK, ENV = "{exp}", "{task}", "{env}"
BAD_CONFIG = "signals:\n  - name: x\n"

# (method, route path) -> [(concrete path, JSON body or None)], each of them invalid.
CASES: dict[tuple[str, str], list[tuple[str, Any]]] = {
    ("POST", "/v1/tasks"): [
        ("/v1/tasks", {"name": "", "prompt": "p"}),
        ("/v1/tasks", {"name": LONG, "prompt": "p"}),
        ("/v1/tasks", {"name": "t", "prompt": 5}),
        ("/v1/tasks", {"name": ["t"], "prompt": "p"}),
        ("/v1/tasks", {"prompt": "p"}),
        ("/v1/tasks", {}),
    ],
    ("POST", "/v1/environments"): [
        ("/v1/environments", {"name": "", "agent": {"kind": "scripted"}}),
        ("/v1/environments", {"name": LONG, "agent": {"kind": "scripted"}}),
        ("/v1/environments", {"name": "e", "agent": {"kind": "nope"}}),
        ("/v1/environments", {"name": "e", "agent": {"kind": "scripted", "skill": "abc"}}),
        ("/v1/environments", {"name": "e", "agent": {"kind": "replay", "transcripts": {}}}),
        ("/v1/environments", {"name": 5}),
    ],
    ("POST", "/v1/experiments"): [
        ("/v1/experiments", {"name": ""}),
        ("/v1/experiments", {"name": "   "}),
        ("/v1/experiments", {"name": LONG}),
        ("/v1/experiments", {"name": "x", "repeats": 0}),
        ("/v1/experiments", {"name": "x", "repeats": -5}),
        ("/v1/experiments", {"name": "x", "repeats": "abc"}),
        ("/v1/experiments", {"name": "x", "repeats": 1.5}),
        ("/v1/experiments", {"name": "x", "task_ids": ["task_nope"]}),
        ("/v1/experiments", {"name": "x", "env_ids": ["env_nope"]}),
        ("/v1/experiments", {"name": "x", "signal_config": BAD_CONFIG}),
        ("/v1/experiments", {"name": 5}),
    ],
    ("PATCH", "/v1/experiments/{exp_id}"): [
        (f"/v1/experiments/{EXP}", {"name": ""}),
        (f"/v1/experiments/{EXP}", {"name": LONG}),
        (f"/v1/experiments/{EXP}", {"name": None}),
        (f"/v1/experiments/{EXP}", {"repeats": 0}),
        (f"/v1/experiments/{EXP}", {"repeats": -5}),
        (f"/v1/experiments/{EXP}", {"repeats": "abc"}),
        (f"/v1/experiments/{EXP}", {"repeats": None}),
        (f"/v1/experiments/{EXP}", {"signal_config": BAD_CONFIG}),
        (f"/v1/experiments/{EXP}", {"unknown": 1}),
        ("/v1/experiments/exp_nope", {"name": "x"}),
    ],
    ("POST", "/v1/experiments/{exp_id}/tasks"): [
        (f"/v1/experiments/{EXP}/tasks", {"task_id": "task_nope"}),
        (f"/v1/experiments/{EXP}/tasks", {"task_id": 5}),
        (f"/v1/experiments/{EXP}/tasks", {}),
        (f"/v1/experiments/{EXP}/tasks", {"task_id": TASK}),  # already attached
        ("/v1/experiments/exp_nope/tasks", {"task_id": TASK}),
    ],
    ("DELETE", "/v1/experiments/{exp_id}/tasks/{task_id}"): [
        (f"/v1/experiments/{EXP}/tasks/task_nope", None),
        (f"/v1/experiments/exp_nope/tasks/{TASK}", None),
    ],
    ("POST", "/v1/experiments/{exp_id}/environments"): [
        (f"/v1/experiments/{EXP}/environments", {"env_id": "env_nope"}),
        (f"/v1/experiments/{EXP}/environments", {"env_id": ["x"]}),
        (f"/v1/experiments/{EXP}/environments", {}),
        (f"/v1/experiments/{EXP}/environments", {"env_id": ENV}),  # already attached
        ("/v1/experiments/exp_nope/environments", {"env_id": ENV}),
    ],
    ("DELETE", "/v1/experiments/{exp_id}/environments/{env_id}"): [
        (f"/v1/experiments/{EXP}/environments/env_nope", None),
        (f"/v1/experiments/exp_nope/environments/{ENV}", None),
    ],
    ("POST", "/v1/experiments/{exp_id}/iterations"): [
        ("/v1/experiments/exp_nope/iterations", None),
        ("/v1/experiments/{empty}/iterations", None),  # no tasks, no environments
    ],
    ("POST", "/v1/experiments/{exp_id}/imports"): [
        (f"/v1/experiments/{EXP}/imports", {"format": "nope", "runs": []}),
        (f"/v1/experiments/{EXP}/imports", {"format": "tpc", "runs": []}),
        (f"/v1/experiments/{EXP}/imports", {"format": "tpc", "runs": "abc"}),
        (
            f"/v1/experiments/{EXP}/imports",
            {
                "format": "tpc",
                "runs": [{"task": "nope", "environment": "nope", "transcript": {"messages": []}}],
            },
        ),
        (
            f"/v1/experiments/{EXP}/imports",
            {
                "format": "tpc",
                "runs": [{"task": TASK, "environment": ENV, "transcript": {"messages": 5}}],
            },
        ),
        ("/v1/experiments/exp_nope/imports", {"format": "tpc", "runs": []}),
    ],
    ("POST", "/v1/experiments/{exp_id}/iterations/{n}/cancel"): [
        (f"/v1/experiments/{EXP}/iterations/99/cancel", None),
        (f"/v1/experiments/{EXP}/iterations/abc/cancel", None),
        (f"/v1/experiments/{EXP}/iterations/-5/cancel", None),
        ("/v1/experiments/exp_nope/iterations/1/cancel", None),
    ],
    ("POST", "/v1/experiments/{exp_id}/iterations/{n}/rescore"): [
        (f"/v1/experiments/{EXP}/iterations/99/rescore", {}),
        (f"/v1/experiments/{EXP}/iterations/abc/rescore", {}),
        (f"/v1/experiments/{EXP}/iterations/1/rescore", {"signal_config": 5}),
        (f"/v1/experiments/{EXP}/iterations/1/rescore", {"signal_config": BAD_CONFIG}),
        ("/v1/experiments/exp_nope/iterations/1/rescore", {}),
    ],
    ("POST", "/v1/signal-configs/validate"): [
        ("/v1/signal-configs/validate", {"signal_config": 5}),
        ("/v1/signal-configs/validate", {}),
    ],
    ("PUT", "/v1/secrets/{name}"): [
        ("/v1/secrets/OK", {"value": ""}),
        ("/v1/secrets/OK", {"value": 5}),
        ("/v1/secrets/OK", {}),
        ("/v1/secrets/1bad", {"value": "v"}),
        ("/v1/secrets/bad-name", {"value": "v"}),
    ],
    ("DELETE", "/v1/secrets/{name}"): [
        ("/v1/secrets/NOPE", None),
        ("/v1/secrets/1bad", None),
    ],
}


def write_routes(app: Starlette) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/v1/")
        for method in (route.methods or set()) & WRITES
    }


@pytest.fixture(scope="module", params=STORES)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The app in process on an empty store of each kind (no workers: nothing runs)."""
    home: Path = tmp_path_factory.mktemp("rules")
    url = f"sqlite:///{home / 'tpc.db'}"
    if request.param == "postgresql":
        url = empty_postgres(request.getfixturevalue("postgres_database"))
    settings = Settings(
        database_url=url,
        api_token=TOKEN,
        run_workers=False,
        credentials_path=home / "credentials",
    )
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        yield api


@pytest.fixture(scope="module")
def ids(client: TestClient) -> dict[str, str]:
    """A task, an environment, an experiment holding both and an empty experiment."""
    task = client.post("/v1/tasks", json={"name": "t", "prompt": "p"}).json()["id"]
    env = client.post("/v1/environments", json={"name": "e", "agent": {"kind": "scripted"}}).json()[
        "id"
    ]
    exp = client.post(
        "/v1/experiments", json={"name": "x", "task_ids": [task], "env_ids": [env]}
    ).json()["id"]
    empty = client.post("/v1/experiments", json={"name": "empty"}).json()["id"]
    client.put("/v1/secrets/KEPT", json={"value": "v"}).raise_for_status()
    return {"exp": exp, "task": task, "env": env, "empty": empty}


def saved(client: TestClient) -> tuple[int, Any]:
    """Where the event log ends, and the secrets (which live beside it)."""
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    return service.store.last_position(), client.get("/v1/secrets").json()


def test_every_write_route_has_cases(client: TestClient) -> None:
    assert write_routes(client.app) == set(CASES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [(method, path, body) for (method, _), cases in CASES.items() for path, body in cases],
)
def test_invalid_writes_are_located_4xx_and_save_nothing(
    client: TestClient, ids: dict[str, str], method: str, path: str, body: Any
) -> None:
    before = saved(client)
    concrete = path.format(**ids)
    if isinstance(body, dict):
        body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    response = client.request(method, concrete, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["message"]
    if response.status_code == 422:
        assert error["problems"], error
        assert all(set(p) == {"loc", "message"} for p in error["problems"])
    elif response.status_code == 404:
        # Located: the message names the unknown id the path or the body gave.
        given = [*concrete.split("/"), *json.dumps(body).split('"')]
        assert any(
            part.startswith(("exp_", "task_", "env_", "NOPE")) and part in error["message"]
            for part in given
        ), error
    assert saved(client) == before
