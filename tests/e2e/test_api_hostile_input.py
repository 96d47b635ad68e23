"""Hostile and malformed requests get a documented 4xx with the JSON error body, never a 500,
and nothing is saved by a refused request: on a real server, on each store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import STORES
from tests.e2e.api_servers import serve_store
from tests.e2e.server import Server


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from serve_store(request, tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def refused(response: httpx.Response, status: int = 422) -> dict[str, Any]:
    """The documented error body of a refused request."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) <= {"code", "message", "problems"}
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def raw_json(api: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    return api.request(
        method, path, content=text.encode(), headers={"content-type": "application/json"}
    )


def test_deep_json_is_a_422(api: httpx.Client) -> None:
    for depth in (100, 100_000):
        body = '{"name": "x", "prompt": "p", "metadata": {"a": ' + "[" * depth + "]" * depth + "}}"
        error = refused(raw_json(api, "POST", "/v1/tasks", body))
        assert "nests deeper than" in error["message"] or "not valid JSON" in error["message"]
    assert api.get("/v1/tasks").json()["items"] == []


def test_deep_yaml_in_a_signal_config_is_a_422(api: httpx.Client) -> None:
    for text in ("[" * 100_000, "a: " + "[" * 5_000 + "]" * 5_000, "- " * 3_000 + "x"):
        error = refused(api.post("/v1/experiments", json={"name": "deep", "signal_config": text}))
        assert error["problems"][0]["loc"] == "signal_config"
        report = api.post("/v1/signal-configs/validate", json={"signal_config": text})
        assert report.status_code == 200
        assert report.json()["valid"] is False
    assert api.get("/v1/experiments").json()["items"] == []


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ('{"name": "a\\ud800b", "prompt": "p"}', "name"),
        ('{"name": "a", "prompt": "p", "tags": ["ok", "\\udfff"]}', "tags[1]"),
        ('{"name": "a\\u0000b", "prompt": "p"}', "name"),
        ('{"name": "a", "prompt": "p", "metadata": {"\\ud800": 1}}', "metadata.\ufffd"),
    ],
)
def test_text_no_store_can_keep_is_a_located_422(api: httpx.Client, text: str, loc: str) -> None:
    error = refused(raw_json(api, "POST", "/v1/tasks", text))
    assert error["problems"][0]["loc"] == loc
    assert api.get("/v1/tasks").json()["items"] == []


def test_an_experiments_ids_are_checked_whatever_they_hold(api: httpx.Client) -> None:
    # NUL cannot reach the one query that looks the ids up; thousands of unknown ids are one
    # clear 404 (a few queries), and nothing is saved either way.
    error = refused(
        raw_json(api, "POST", "/v1/experiments", '{"name": "x", "task_ids": ["a\\u0000"]}')
    )
    assert error["problems"][0]["loc"] == "task_ids[0]"
    many = {"name": "x", "task_ids": [f"task_{i}" for i in range(20_000)]}
    missing = api.post("/v1/experiments", json=many)
    assert missing.status_code == 404
    assert "task task_0 not found" in missing.text
    assert api.get("/v1/experiments").json()["items"] == []


def test_bodies_that_are_not_json_objects_are_422(api: httpx.Client) -> None:
    for text in ("{nope", "[1]", '"x"', "\xff", '{"name": NaN}', '{"repeats": 1e400}'):
        refused(raw_json(api, "POST", "/v1/experiments", text))
    refused(api.post("/v1/experiments", content=b"\xff\xfe", headers={"content-type": "x"}))


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tasks?limit=%C2%B2",
        "/v1/tasks?limit=0",
        "/v1/tasks?limit=501",
        "/v1/tasks?limit=99999999999999999999999999",
        "/v1/tasks?cursor=%C2%B2",
        "/v1/tasks?cursor=99999999999999999999999999",
        "/v1/environments?cursor=-1",
        "/v1/experiments?limit=-1",
    ],
)
def test_bad_paging_numbers_are_422(api: httpx.Client, path: str) -> None:
    assert refused(api.get(path))["problems"][0]["loc"] in ("limit", "cursor")


def test_an_empty_cursor_is_the_first_page(api: httpx.Client) -> None:
    assert api.get("/v1/tasks?cursor=").status_code == 200


def test_bad_numbers_in_paths_and_queries_are_422(api: httpx.Client) -> None:
    exp = api.post("/v1/experiments", json={"name": "numbers"}).json()["id"]
    huge = "9" * 40
    for method, path, loc in (
        ("POST", f"/v1/experiments/{exp}/iterations/%C2%B2%C2%B9/cancel", "n"),
        ("GET", f"/v1/experiments/{exp}/iterations/{huge}", "n"),
        ("GET", f"/v1/experiments/{exp}/iterations/%C2%B2/results", "n"),
        ("GET", f"/v1/experiments/{exp}/iterations/1/results?compare={huge}", "compare"),
        ("GET", f"/v1/experiments/{exp}/iterations/1/results?compare=%C2%B2", "compare"),
        ("GET", f"/v1/experiments/{exp}?as_of={huge}", "as_of"),
        ("GET", f"/v1/experiments/{exp}?as_of=%C2%B2", "as_of"),
        ("GET", f"/v1/experiments/{exp}/history?limit={huge}", "limit"),
        ("GET", f"/v1/runs/run_x/logs?after={huge}", "after"),
    ):
        error = refused(api.request(method, path))
        assert error["problems"][0]["loc"] == loc, path
    # In range, they are just numbers: the iteration does not exist.
    refused(api.get(f"/v1/experiments/{exp}/iterations/12345"), 404)


@pytest.mark.parametrize("repeats", ["abc", None, [1], 1.5, True, 0, -5, 1001, 10**30])
def test_patch_repeats_follows_the_create_rules(api: httpx.Client, repeats: Any) -> None:
    exp = api.post("/v1/experiments", json={"name": "rules"}).json()
    error = refused(api.patch(f"/v1/experiments/{exp['id']}", json={"repeats": repeats}))
    assert error["problems"][0]["loc"] == "repeats"
    create = api.post("/v1/experiments", json={"name": "rules", "repeats": repeats})
    assert refused(create)["problems"][0]["loc"] == "repeats"
    assert api.get(f"/v1/experiments/{exp['id']}").json()["repeats"] == 1


def test_patch_repeats_of_1e400_is_a_422(api: httpx.Client) -> None:
    exp = api.post("/v1/experiments", json={"name": "rules"}).json()
    refused(raw_json(api, "PATCH", f"/v1/experiments/{exp['id']}", '{"repeats": 1e400}'))


@pytest.mark.parametrize("name", ["", "   ", None, 7, "n" * 201])
def test_patch_name_follows_the_create_rules(api: httpx.Client, name: Any) -> None:
    exp = api.post("/v1/experiments", json={"name": "named"}).json()
    error = refused(api.patch(f"/v1/experiments/{exp['id']}", json={"name": name}))
    assert error["problems"][0]["loc"] == "name"
    assert refused(api.post("/v1/experiments", json={"name": name}))["problems"][0]["loc"] == "name"
    assert api.get(f"/v1/experiments/{exp['id']}").json()["name"] == "named"


def test_unknown_fields_are_refused_with_their_location(api: httpx.Client) -> None:
    exp = api.post("/v1/experiments", json={"name": "fields"}).json()
    for method, path, body in (
        ("PATCH", f"/v1/experiments/{exp['id']}", {"colour": "red"}),
        ("POST", "/v1/experiments", {"name": "x", "colour": "red"}),
        ("POST", f"/v1/experiments/{exp['id']}/tasks", {"task_id": "t", "colour": "red"}),
        ("POST", "/v1/signal-configs/validate", {"signal_config": "", "colour": "red"}),
    ):
        error = refused(api.request(method, path, json=body))
        assert {"loc": "colour", "message": "unknown field"} in error["problems"], error


def test_attach_needs_its_id(api: httpx.Client) -> None:
    exp = api.post("/v1/experiments", json={"name": "attach"}).json()
    for body in ({}, {"task_id": 5}, {"task_id": None}):
        error = refused(api.post(f"/v1/experiments/{exp['id']}/tasks", json=body))
        assert error["problems"][0]["loc"] == "task_id"
    error = refused(api.post(f"/v1/experiments/{exp['id']}/environments", json={}))
    assert error["problems"][0]["loc"] == "env_id"


def test_a_valid_patch_still_changes_the_experiment(api: httpx.Client) -> None:
    exp = api.post("/v1/experiments", json={"name": "before", "repeats": 2}).json()
    changed = api.patch(f"/v1/experiments/{exp['id']}", json={"name": "after", "repeats": 1000})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["repeats"]) == ("after", 1000)


def test_paths_and_queries_no_store_can_hold_are_refused(api: httpx.Client) -> None:
    exp = api.post("/v1/experiments", json={"name": "paths"}).json()["id"]
    for path in (
        "/v1/experiments/%ED%A0%80",  # not UTF-8: decoded with a replacement character
        "/v1/runs/%ED%A0%80/logs",
        "/v1/tasks/%00",
        "/v1/environments/env_%00",
        f"/v1/experiments/{exp}/iterations/1/runs?status=%00",
        f"/v1/experiments/{exp}/iterations/1/results?error_category=a%00b",
    ):
        response = api.get(path)
        assert response.status_code in (404, 422), path
        json.loads(response.text)
        assert set(response.json()) == {"error"}
