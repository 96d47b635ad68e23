"""Live run logs through a real `tpc serve`: `GET /v1/runs/{id}/logs` while a slow scripted run
works and after it ends, and `tpc sim run logs RUN --follow` in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.web.session import COOKIE
from application.catalog_commands import token_hash
from application.service import Service
from domain.catalog import Product
from domain.transcripts import transcript_from_object
from infra.settings import Settings
from tests.e2e.server import TPC, Server
from tests.eventually import eventually

# Slow enough that a follower sees messages well before the run ends (4 steps of 1.5 s).
SLOW_AGENT = {"kind": "scripted", "skill": 1, "step_latency_s": 1.5}
# Only a guard against a hang (the suite's timeout is the real limit): never asserted.
PATIENCE_S = 90


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("live")).start()
    yield running
    running.stop()


def slow_run(api: httpx.Client, name: str) -> tuple[str, str]:
    """Trigger a one-run experiment on the slow scripted agent: (experiment id, run id)."""
    task = api.post("/v1/tasks", json={"name": name, "prompt": f"Please {name}"}).json()
    env = api.post("/v1/environments", json={"name": f"slow {name}", "agent": SLOW_AGENT}).json()
    exp = api.post(
        "/v1/experiments", json={"name": name, "task_ids": [task["id"]], "env_ids": [env["id"]]}
    ).json()
    assert api.post(f"/v1/experiments/{exp['id']}/iterations").status_code == 201
    runs = api.get(f"/v1/experiments/{exp['id']}/iterations/1/runs").json()["items"]
    return exp["id"], runs[0]["id"]


def logs(api: httpx.Client, run_id: str, after: int = 0) -> dict[str, Any]:
    response = api.get(f"/v1/runs/{run_id}/logs", params={"after": after})
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def poll(api: httpx.Client, run_id: str, until: Any) -> dict[str, Any]:
    return eventually(
        lambda: page if until(page := logs(api, run_id)) else None,
        what=f"the logs of {run_id}",
        timeout=PATIENCE_S,
        interval=0.1,
    )


def parsed(messages: list[dict[str, Any]]) -> Any:
    return transcript_from_object({"messages": messages}).messages


def add_product(server: Server, token: str) -> None:
    """A second product, written straight to the server's store (the API has no command for
    it); the server reads it from the shared views."""
    service = Service(Settings(database_url=f"sqlite:///{server.db}"))
    try:
        service.store.save(
            Product(public_id="prd_other", name="other", token_hash=token_hash(token))
        )
        service.projector.catch_up()
    finally:
        service.close()


def test_the_logs_endpoint_gives_live_messages_then_the_transcript(server: Server) -> None:
    with server.client() as api:
        _, run_id = slow_run(api, "endpoint")
        live = poll(api, run_id, lambda page: page["messages"] or page["done"])
        # The instruction is recorded as soon as the run starts; the run goes on for seconds.
        assert live["status"] == "running", live
        assert live["attempt"] == 1 and live["done"] is False
        assert live["messages"][:2] == [
            {"index": 0, "role": "system", "content": live["messages"][0]["content"]},
            {"index": 1, "role": "user", "content": "Please endpoint"},
        ]
        seen = live["next"]
        assert seen == live["messages"][-1]["index"] + 1
        tail = logs(api, run_id, after=seen - 1)
        assert [m["index"] for m in tail["messages"]][:1] == [seen - 1]
        assert api.get(f"/v1/runs/{run_id}/logs", params={"after": "x"}).status_code == 422
        # The dashboard's run page shows them too, and reloads itself while the run runs.
        session = {COOKIE: server.dashboard_session()}
        page = httpx.get(f"{server.url}/runs/{run_id}", cookies=session).text
        assert 'data-live-refresh="2"' in page and 'id="event-1"' in page

        add_product(server, "other-token")
        with server.client("other-token") as other:
            assert other.get("/v1/experiments").status_code == 200  # the token works
            hidden = other.get(f"/v1/runs/{run_id}/logs")
            assert hidden.status_code == 404
            assert hidden.json()["error"]["code"] == "not_found"

        ended = poll(api, run_id, lambda page: page["done"])
        assert ended["done"] is True and ended["status"] == "passed"
        transcript = api.get(f"/v1/runs/{run_id}/transcript").json()["messages"]
        rest = logs(api, run_id, after=seen)
        assert rest["done"] is True
        assert (
            rest["messages"]
            == [{"index": index, **message} for index, message in enumerate(transcript)][seen:]
        )
        assert rest["next"] == len(transcript)
        assert [m["index"] for m in logs(api, run_id)["messages"]] == list(range(len(transcript)))


def test_run_logs_follow_prints_messages_as_they_happen(server: Server) -> None:
    with server.client() as api:
        _, run_id = slow_run(api, "follow")
        with (
            tempfile.TemporaryFile(mode="w+") as errors,
            subprocess.Popen(
                [TPC, "--format", "json", "sim", "run", "logs", run_id, "--follow"],
                env=server.env,
                cwd=server.home,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            ) as follower,
        ):
            try:
                assert follower.stdout is not None
                first = follower.stdout.readline()
                # The first message arrived while the run was still working.
                assert api.get(f"/v1/runs/{run_id}").json()["status"] == "running"
                # Through the same buffered reader: `communicate()` would read the pipe beneath
                # it and lose the lines `readline()` had already buffered.
                rest = follower.stdout.read()
                follower.wait(timeout=PATIENCE_S)
            finally:
                if follower.poll() is None:
                    follower.kill()
            errors.seek(0)
            assert follower.returncode == 0, errors.read()
        lines = [json.loads(line) for line in [first, *rest.splitlines()]]
        *messages, final = lines
        assert final["id"] == run_id and final["status"] == "passed"
        assert [m["index"] for m in messages] == list(range(len(messages)))
        assert {m["attempt"] for m in messages} == {1}
        transcript = api.get(f"/v1/runs/{run_id}/transcript").json()["messages"]
        # Live messages are as the runner reported them (a text may still be a string).
        followed = [{k: v for k, v in m.items() if k not in ("index", "attempt")} for m in messages]
        assert parsed(followed) == parsed(transcript)

    # A finished run: its whole transcript, then its status, for people.
    human = server.tpc("sim", "run", "logs", run_id, "--follow")
    assert human.returncode == 0, human.stderr
    assert "[0] system" in human.stdout and f"[{len(transcript) - 1}] assistant" in human.stdout
    assert human.stdout.rstrip().splitlines()[-1].startswith(f"{run_id} passed (completed)")


def test_run_logs_without_follow_explains_how_to_follow(server: Server) -> None:
    with server.client() as api:
        _, run_id = slow_run(api, "unfinished")
    refused = server.tpc("sim", "run", "logs", run_id)
    assert refused.returncode != 0
    assert f"tpc sim run logs {run_id} --follow" in refused.stderr


def test_ctrl_c_stops_following_cleanly(server: Server) -> None:
    with server.client() as api:
        _, run_id = slow_run(api, "interrupted")
    follower = subprocess.Popen(
        [TPC, "sim", "run", "logs", run_id, "--follow"],
        env=server.env,
        cwd=server.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        assert "×" in follower.stdout.readline()  # the header: it is following now
        follower.send_signal(signal.SIGINT)
        _, errors = follower.communicate(timeout=PATIENCE_S)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 130
    assert errors.strip() == f"stopped following {run_id}"
