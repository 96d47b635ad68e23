"""Products, tokens and dashboard sessions end to end, on each store: the operator's `tpc
product` and `tpc token` commands in a subprocess on the server's store, a real `tpc serve`
that refuses a revoked token at once (API 401, dashboard session ended, even where its reads
acted on the product the token acted for last), same-site checks on every state-changing
dashboard request, and the security headers on every response."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.web.session import COOKIE
from tests.conftest import STORES
from tests.e2e.api_servers import serve_store
from tests.e2e.server import TPC, Server


@pytest.fixture(scope="module", params=STORES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    # The bootstrap token comes with surrounding whitespace, as from a careless `export`.
    home = tmp_path_factory.mktemp("tokens")
    yield from serve_store(request, home, {"TPC_API_TOKEN": "  e2e-token\n"})


def operator(server: Server, *args: str) -> Any:
    """`tpc --format json ARGS` as the operator (the store, no API token), parsed."""
    done = server.tpc("--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def api_tasks(server: Server, token: str) -> list[dict[str, Any]]:
    with server.client(token) as api:
        listed: list[dict[str, Any]] = api.get("/v1/tasks").json()["items"]
    return listed


def dashboard(server: Server, path: str, session: str) -> httpx.Response:
    return httpx.get(server.url + path, cookies={COOKIE: session}, follow_redirects=False)


def test_a_token_given_with_surrounding_whitespace_works_as_typed(server: Server) -> None:
    with server.client("e2e-token") as api:
        assert api.get("/v1/experiments").status_code == 200
    session = server.dashboard_session(" e2e-token ")
    assert dashboard(server, "/", session).status_code == 200


def test_the_operator_manages_products_and_tokens_and_revocation_is_immediate(
    server: Server,
) -> None:
    created = operator(server, "product", "create", "--name", "Payments")
    product_id, first = created["product"]["id"], created["token"]
    assert created["product"]["name"] == "Payments" and first["name"] == "default"
    assert first["token"].startswith("tpc_") and first["hint"] == first["token"][-4:]
    products = operator(server, "product", "list")["products"]
    assert [p["name"] for p in products] == ["default", "Payments"]
    second = operator(server, "token", "create", product_id, "--name", "ci")
    assert (second["product_id"], second["name"]) == (product_id, "ci")

    with server.client(first["token"]) as api:
        task = {"name": "t", "prompt": "p"}
        assert api.post("/v1/tasks", json=task).status_code == 201
    with server.client(second["token"]) as api:
        assert api.get("/v1/tasks").json()["items"][0]["name"] == "t"
    with server.client() as bootstrap:  # the first product sees none of it
        assert bootstrap.get("/v1/tasks").json()["items"] == []

    listed = operator(server, "token", "list", product_id)
    assert [(t["id"], t["name"], t["revoked"]) for t in listed["tokens"]] == [
        (first["id"], "default", False),
        (second["id"], "ci", False),
    ]
    table = server.tpc("token", "list", product_id)
    assert table.returncode == 0 and f"…{second['hint']}" in table.stdout
    for shown in (json.dumps(listed), table.stdout):
        assert first["token"] not in shown and second["token"] not in shown

    session = server.dashboard_session(second["token"])
    assert dashboard(server, "/", session).status_code == 200
    revoked = operator(server, "token", "revoke", second["id"])
    assert revoked["revoked"] is True and revoked["sessions_ended"] == 1

    with server.client(second["token"]) as api:
        refused = api.get("/v1/tasks")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        # Nothing of the request is looked at either: a 401 before any 422.
        assert api.get("/v1/experiments?limit=abc").status_code == 401
        # Writes too, though the server still remembers the product this token acted for:
        # nothing is written, and a bad body is a 401 as well.
        assert api.post("/v1/tasks", json={"name": "late", "prompt": "p"}).status_code == 401
        assert api.post("/v1/experiments", json={"name": ""}).status_code == 401
        assert api.patch("/v1/experiments/exp_nopenope", json={"name": "x"}).status_code == 401
        assert api.post("/v1/experiments/exp_nopenope/iterations").status_code == 401
    assert [t["name"] for t in api_tasks(server, first["token"])] == ["t"]
    page = dashboard(server, "/", session)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    with server.client(first["token"]) as api:  # the product's other token still works
        assert api.get("/v1/tasks").status_code == 200
    again = server.tpc("token", "revoke", second["id"])
    assert again.returncode == 1 and "already revoked" in again.stderr


def test_operator_commands_explain_what_is_wrong(server: Server) -> None:
    unknown = server.tpc("token", "revoke", "tok_nopenopenope")
    assert unknown.returncode == 1 and "token tok_nopenopenope not found" in unknown.stderr
    missing = server.tpc("--format", "json", "token", "list", "prd_nopenopenope")
    assert missing.returncode == 1 and missing.stdout == ""
    assert "product prd_nopenopenope not found" in missing.stderr
    empty = server.tpc("product", "create", "--name", " ")
    assert empty.returncode == 1 and "name must not be empty" in empty.stderr


def post(server: Server, path: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    return httpx.post(server.url + path, headers=headers, follow_redirects=False, **kwargs)


def test_state_changing_dashboard_requests_must_come_from_the_dashboard(server: Server) -> None:
    form = {"token": "e2e-token", "next": "/"}
    same_site = {"Origin": server.url}
    for headers in ({"Origin": "null"}, {}, {"Origin": "http://evil.example"}):
        refused = post(server, "/login", headers, data=form)
        assert refused.status_code == 403, headers
        assert COOKIE not in refused.cookies
    assert (
        post(server, "/login", {"Referer": "http://evil.example/x"}, data=form).status_code == 403
    )
    # Without an Origin, a Referer on this host is enough; the normal flow signs in.
    by_referer = post(server, "/login", {"Referer": server.url + "/login"}, data=form)
    assert by_referer.status_code == 303
    assert post(server, "/login", same_site, data=form).status_code == 303
    # After signing in, only a local path: never another site, however it is spelt.
    for target in (
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "https://evil.example/",
    ):
        moved = post(server, "/login", same_site, data={**form, "next": target})
        assert moved.headers["location"] == "/", target

    session = server.dashboard_session()
    cookies = {COOKIE: session}
    experiment = {"name": "x", "repeats": "1"}
    for headers in ({"Origin": "null"}, {}):
        assert (
            post(server, "/experiments", headers, data=experiment, cookies=cookies).status_code
            == 403
        )
        assert post(server, "/logout", headers, cookies=cookies).status_code == 403
    assert dashboard(server, "/", session).status_code == 200  # not signed out by them
    created = post(server, "/experiments", same_site, data=experiment, cookies=cookies)
    assert created.status_code == 303 and created.headers["location"].startswith("/experiments/")
    signed_out = post(server, "/logout", same_site, cookies=cookies)
    assert signed_out.status_code == 303
    assert dashboard(server, "/", session).status_code == 303  # the session ended


def test_every_response_carries_the_security_headers(server: Server) -> None:
    session = server.dashboard_session()
    with server.client() as api:
        signed_in = [api.get("/v1/experiments"), api.get("/v1/experiments/exp_nopenopenope")]
    responses = [
        httpx.get(server.url + "/healthz"),
        httpx.get(server.url + "/v1/experiments"),
        *signed_in,
        httpx.get(server.url + "/openapi.json"),
        httpx.get(server.url + "/login"),
        httpx.get(server.url + "/static/app.js"),
        httpx.get(server.url + "/static/app.css"),
        dashboard(server, "/", session),
        post(server, "/login", {"Origin": "null"}, data={}),
    ]
    for response in responses:
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    page = responses[8].text
    assert "<style" not in page and " style=" not in page and "<script>" not in page


def test_writes_on_a_remembered_product_reach_no_other_products_ids(server: Server) -> None:
    """Each token's requests act on the product it acted for last; another product's ids
    stay 404 to its writes as to its reads, and nothing of theirs changes."""
    other = operator(server, "product", "create", "--name", "Other")["token"]["token"]
    with server.client(other) as theirs:
        task = theirs.post("/v1/tasks", json={"name": "theirs", "prompt": "p"}).json()["id"]
        env = {"name": "theirs", "agent": {"kind": "scripted"}}
        env_id = theirs.post("/v1/environments", json=env).json()["id"]
        body = {"name": "theirs", "task_ids": [task], "env_ids": [env_id]}
        exp = theirs.post("/v1/experiments", json=body).json()
    with server.client() as mine:
        assert mine.get("/v1/experiments").status_code == 200  # remembered: writes act on it
        assert mine.post("/v1/experiments", json={**body, "name": "mine"}).status_code == 404
        path = f"/v1/experiments/{exp['id']}"
        assert mine.patch(path, json={"name": "taken"}).status_code == 404
        assert mine.post(f"{path}/iterations").status_code == 404
        assert mine.post(f"{path}/tasks", json={"task_id": task}).status_code == 404
        names = {e["name"] for e in mine.get("/v1/experiments").json()["items"]}
        assert not names & {"mine", "taken", "theirs"}
    with server.client(other) as theirs:
        assert theirs.get(path).json() == exp
        assert theirs.get(f"{path}/iterations").json()["items"] == []


def test_serve_refuses_a_token_with_spaces_at_start(tmp_path: Path) -> None:
    server = Server(tmp_path)
    done = subprocess.run(
        [TPC, "serve", "--port", str(server.port)],
        env={**server.env, "TPC_API_TOKEN": "my secret token"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "TPC_API_TOKEN must not contain spaces or other whitespace" in message
    assert "my secret token" not in done.stderr and "Traceback" not in done.stderr
