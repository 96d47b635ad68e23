"""Product secrets, command consent and provider keys through a real `tpc serve`, on both
stores: the /v1/secrets routes, the regression (`env: {S: "${TPC_API_TOKEN}"}` put the
server's token in a product's transcript), one product's secret out of another's reach, a
command refused without the operator's consent, and a product's own key sent to its own
`base_url` while the operator's key stays home."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from application.service import Service
from infra.settings import Settings
from tests.e2e.server import Server
from tests.eventually import eventually
from tests.fakes.provider import TEST_KEY, FakeProvider, Reply, serving

AGENT = (
    "import json, os; print(json.dumps({'version': 1, 'messages': ["
    "{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': "
    "'S=' + os.environ.get('S', '') + ' server=' + os.environ.get('TPC_API_TOKEN', 'none')}]}))"
)


def command_env(env: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "cmd",
        "agent": {"kind": "command", "command": [sys.executable, "-c", AGENT], "env": env},
        "limits": {"timeout_s": 60},
    }


def created(response: httpx.Response) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


def run_once(client: httpx.Client, env: dict[str, Any]) -> tuple[str, int]:
    """Create a task, the environment and an experiment, trigger it: (experiment, number)."""
    task = created(client.post("/v1/tasks", json={"name": "t", "prompt": "hi"}))
    environment = created(client.post("/v1/environments", json=env))
    experiment = created(
        client.post(
            "/v1/experiments",
            json={"name": "e", "task_ids": [task["id"]], "env_ids": [environment["id"]]},
        )
    )
    triggered = created(client.post(f"/v1/experiments/{experiment['id']}/iterations"))
    return experiment["id"], triggered["iteration"]


def finished_transcript(client: httpx.Client, exp_id: str, number: int) -> dict[str, Any]:
    path = f"/v1/experiments/{exp_id}/iterations/{number}"
    eventually(
        lambda: client.get(path).json()["status"] == "completed",
        what=f"{path} completed",
        timeout=60,
        interval=0.2,
    )
    [run] = client.get(f"{path}/runs").json()["items"]
    document: dict[str, Any] = client.get(f"/v1/runs/{run['id']}/transcript").json()
    return document


def add_product(database_url: str) -> str:
    """A second product, as `tpc product create` makes it; returns its token."""
    service = Service(Settings(database_url=database_url), environ={})
    try:
        token: str = service.catalog.create_product("b")["token"]["token"]
        return token
    finally:
        service.close()


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(
        tmp_path, database_url=store_url, environ={"TPC_ALLOW_COMMANDS": "all"}
    ).start()
    yield running
    running.stop()


def test_secrets_routes_and_a_command_agent_sees_only_its_products_secret(
    server: Server,
) -> None:
    with server.client() as a:
        saved = a.put("/v1/secrets/S", json={"value": "product-a-secret"})
        assert saved.status_code == 200, saved.text
        assert set(saved.json()) == {"name", "updated_at"}
        listed = a.get("/v1/secrets")
        assert [item["name"] for item in listed.json()["items"]] == ["S"]
        assert "product-a-secret" not in listed.text
        assert a.put("/v1/secrets/1X", json={"value": "v"}).status_code == 422
        assert a.put("/v1/secrets/X", json={"value": 1}).status_code == 422
        assert a.put("/v1/secrets/X", json={"value": "a\u0000b"}).status_code == 422
        assert a.delete("/v1/secrets/NOPE").status_code == 404

        # The regression: the server's own token is not a variable a product can read.
        refused = a.post("/v1/environments", json=command_env({"S": "${TPC_API_TOKEN}"}))
        assert refused.status_code == 422, refused.text
        assert "${TPC_API_TOKEN}" in refused.json()["error"]["message"]
        assert "tpc product secret set PRODUCT TPC_API_TOKEN" in refused.text

        exp_id, number = run_once(a, command_env({"S": "${S}"}))
        transcript = json.dumps(finished_transcript(a, exp_id, number))
        assert "S=product-a-secret server=none" in transcript
        assert server.token not in transcript

        # Another product neither sees nor uses product A's secret.
        token_b = add_product(server.database_url)
        with server.client(token_b) as b:
            listed_b = eventually(  # the server's views follow the log
                lambda: (listed := b.get("/v1/secrets")).status_code != 401 and listed,
                what="the new product's token known",
                timeout=10,
                interval=0.1,
            )
            assert listed_b.json() == {"items": []}
            other = b.post("/v1/environments", json=command_env({"S": "${S}"}))
            assert other.status_code == 422, other.text
            assert b.delete("/v1/secrets/S").status_code == 404

        # Removed since the environment was created: the trigger is refused.
        assert a.delete("/v1/secrets/S").json() == {"name": "S", "removed": True}
        again = a.post(f"/v1/experiments/{exp_id}/iterations")
        assert again.status_code == 422, again.text
        assert "PUT /v1/secrets/S" in again.text


def test_commands_are_forbidden_unless_the_operator_allows_them(tmp_path: Path) -> None:
    server = Server(tmp_path).start()  # TPC_ALLOW_COMMANDS unset: none
    try:
        with server.client() as client:
            env = client.post("/v1/environments", json=command_env({}))
            assert env.status_code == 403, env.text
            assert "TPC_ALLOW_COMMANDS" in env.json()["error"]["message"]
            task = {"name": "t", "prompt": "p", "success": {"command": "true"}}
            assert client.post("/v1/tasks", json=task).status_code == 403
            scripted = {"name": "s", "agent": {"kind": "scripted"}}
            assert client.post("/v1/environments", json=scripted).status_code == 201
    finally:
        server.stop()


@pytest.fixture
def operator() -> Iterator[FakeProvider]:
    yield from serving()


@pytest.fixture
def tenant() -> Iterator[FakeProvider]:
    yield from serving()


def test_a_products_own_key_goes_to_its_base_url_and_the_operators_key_stays_home(
    tmp_path: Path, operator: FakeProvider, tenant: FakeProvider
) -> None:
    tenant.script(Reply.say("Hello from the product's own server"))
    server = Server(tmp_path, environ=operator.env()).start()
    agent = {
        "kind": "llm",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "base_url": tenant.openai_url,
        "tools": [],
    }
    try:
        with server.client() as client:
            refused = client.post("/v1/environments", json={"name": "own", "agent": agent})
            assert refused.status_code == 422, refused.text
            assert "TPC_PROVIDER_BASE_URLS" in refused.text and "api_key" in refused.text
            literal = {"name": "own", "agent": {**agent, "api_key": "sk-literal"}}
            assert client.post("/v1/environments", json=literal).status_code == 422

            client.put("/v1/secrets/MY_KEY", json={"value": "product-key"}).raise_for_status()
            own = {"name": "own", "agent": {**agent, "api_key": "${MY_KEY}"}}
            exp_id, number = run_once(client, own)
            transcript = finished_transcript(client, exp_id, number)
            assert transcript["status"] == "passed", transcript
    finally:
        server.stop()
    [sent] = tenant.requests
    assert sent.headers["authorization"] == "Bearer product-key"
    assert TEST_KEY not in str(dict(sent.headers))
    assert operator.requests == []
