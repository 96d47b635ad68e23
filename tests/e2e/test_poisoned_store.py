"""Issue 11 item 3 through a real `tpc serve` and the real CLI: one NUL character used to break a
PostgreSQL store for every tenant, for good. Now it is refused with a located 422 and nothing
is saved; and a store an older version poisoned opens, migrates, rebuilds and reports what its
views skipped."""

from __future__ import annotations

from pathlib import Path

import httpx

from application.service import Service
from domain.catalog import Task
from infra.settings import Settings
from tests.conftest import store_kind
from tests.e2e.server import Server, as_json
from tests.poisoned import save_around_the_guard

TOKEN = "e2e-token"


def test_one_nul_on_postgresql_is_refused_and_breaks_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    server = Server(tmp_path, token=TOKEN, database_url=postgres_url).start()
    try:
        with server.client() as client:
            refused = client.post("/v1/tasks", json={"name": "a\u0000b", "prompt": "p"})
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["code"] == "invalid"
            assert any("name" in p["loc"] and "NUL" in p["message"] for p in error["problems"])
            # A lone surrogate (an escape JSON allows) likewise.
            surrogate = client.post(
                "/v1/tasks",
                content=b'{"name": "x", "prompt": "a\\ud800b"}',
                headers={"Content-Type": "application/json"},
            )
            assert surrogate.status_code == 422, surrogate.text
            assert any("prompt" in p["loc"] for p in surrogate.json()["error"]["problems"])

            # The next write is saved and answered 2xx, and reads back.
            created = client.post("/v1/tasks", json={"name": "fine", "prompt": "p"})
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            assert client.get(f"/v1/tasks/{task_id}").json()["name"] == "fine"
            assert [t["name"] for t in client.get("/v1/tasks").json()["items"]] == ["fine"]
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok"
        assert health["projection"]["failures"] == 0
        assert health["projection"]["position"] == health["projection"]["head"]
    finally:
        server.stop()

    # Nothing was poisoned: the operator's commands and a restart work.
    assert server.tpc("db", "migrate").returncode == 0
    assert server.tpc("projections", "rebuild").returncode == 0
    assert as_json(server, "projections", "status")["failures"] == []
    server.start()
    try:
        with server.client() as client:
            assert client.get(f"/v1/tasks/{task_id}").status_code == 200
            later = client.post("/v1/tasks", json={"name": "later", "prompt": "p"})
            assert later.status_code == 201, later.text
    finally:
        server.stop()


def test_a_store_poisoned_by_an_older_version_serves_migrates_rebuilds_and_reports(
    store_url: str, tmp_path: Path
) -> None:
    # What an older tpc left: a saved event whose text the views cannot hold.
    bad_text = "a\x00b" if store_kind(store_url) == "postgresql" else "a\ud800b"
    service = Service(Settings(database_url=store_url))
    try:
        boot = service.catalog.bootstrap(TOKEN)
        assert boot is not None
        [bad] = save_around_the_guard(
            service.store,
            Task(public_id="task_bad", product_id=boot.product_id, definition={"name": bad_text}),
        )
    finally:
        service.close()
    server = Server(tmp_path, token=TOKEN, database_url=store_url)

    migrate = server.tpc("db", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    rebuild = as_json(server, "projections", "rebuild")
    assert (rebuild["position"], rebuild["failures"]) == (bad, 1)
    status = as_json(server, "projections", "status")
    assert (status["position"], status["head"], status["lag"]) == (bad, bad, 0)
    assert status["failure_count"] == 1
    [failure] = status["failures"]
    assert (failure["position"], failure["topic"]) == (bad, "tpc:Task.Created")
    assert failure["error"] and failure["recorded_at"]
    shown = server.tpc("projections", "status")
    assert shown.returncode == 0, shown.stderr
    assert "tpc:Task.Created" in shown.stdout and "1 event could not be applied" in shown.stdout

    server.start()
    try:
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "ok"
        assert health["projection"]["failures"] == 1
        with server.client() as client:
            created = client.post("/v1/tasks", json={"name": "after", "prompt": "p"})
            assert created.status_code == 201, created.text
            assert [t["name"] for t in client.get("/v1/tasks").json()["items"]] == ["after"]
    finally:
        server.stop()
