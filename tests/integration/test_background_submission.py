"""A trigger answers once its iteration is saved; handing the runs to the executor (SQLite) or
the job queue (PostgreSQL) happens after the answer. Nothing is lost by it: the runs still
execute, a process that stops before submitting resumes the iteration on its next start, and a
submission that fails is logged."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.http.app import create_app
from application.executor import Executor
from application.service import Service
from infra.runners.scripted import ScriptedRunner
from infra.settings import Settings
from projections.queries import Views
from tests.e2e.server import free_port, in_process
from tests.eventually import eventually

TOKEN = "background-token"
SCRIPTED = {"name": "scripted", "agent": {"kind": "scripted", "step_latency_s": 0.01}}


class SubmissionGate:
    """Holds every look for an iteration's unfinished runs (what both submissions read first)
    until `open()`: while it is closed, nothing of an iteration's runs has been handed on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self._opened = threading.Event()
        original = Views.unfinished_runs

        def gated(views: Views, exp_id: str, number: int) -> Any:
            self.reached.set()
            assert self._opened.wait(60), "the gate was never opened"
            return original(views, exp_id, number)

        monkeypatch.setattr(Views, "unfinished_runs", gated)

    def open(self) -> None:
        self._opened.set()


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A real server in this process (so that the gate reaches it), executing runs."""
    settings = Settings(
        database_url=store_url,
        api_token=TOKEN,
        port=free_port(),
        credentials_path=tmp_path / "credentials",
    )
    with in_process(create_app(settings), settings.port) as url:
        yield url


def test_a_trigger_answers_before_its_runs_are_handed_on(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server, headers=headers, timeout=30) as client:
        task = client.post("/v1/tasks", json={"name": "t", "prompt": "p"}).json()["id"]
        env = client.post("/v1/environments", json=SCRIPTED).json()["id"]
        body = {"name": "e", "task_ids": [task], "env_ids": [env], "repeats": 3}
        exp = client.post("/v1/experiments", json=body).json()["id"]
        gate = SubmissionGate(monkeypatch)

        answer = client.post(f"/v1/experiments/{exp}/iterations")

        assert answer.status_code == 201, answer.text
        assert (answer.json()["iteration"], answer.json()["status"]) == (1, "running")
        assert gate.reached.wait(30), "the runs were never submitted"
        gate.open()

        def completed() -> bool:
            status = client.get(f"/v1/experiments/{exp}/iterations/1").json()
            return status["status"] == "completed" and status["runs"]["total"] == 3

        eventually(completed, what="the iteration completed")


def scripted_iteration(service: Service) -> tuple[str, str, int]:
    product = service.catalog.bootstrap("t")
    assert product is not None
    owner = product.product_id
    task = service.catalog.create_task(owner, {"name": "t", "prompt": "p"}).id
    env = service.catalog.create_environment(owner, SCRIPTED).id
    exp = service.experiments.create_experiment(owner, "e", [task], [env], 2).id
    return owner, exp, service.experiments.trigger(owner, exp).iteration


def scripted_executor(service: Service) -> Executor:
    return Executor(service.runs, {"scripted": ScriptedRunner()}, 2)


def test_a_submission_cut_short_by_a_stop_is_resumed(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, exp, number = scripted_iteration(service)
    gate = SubmissionGate(monkeypatch)

    async def stop_while_submitting() -> None:
        executor = scripted_executor(service)
        executor.start(exp, number)
        assert await asyncio.to_thread(gate.reached.wait, 30)
        await executor.stop()
        gate.open()

    asyncio.run(stop_while_submitting())
    assert service.views.iteration_status(owner, exp, number).runs.queued == 2

    async def next_start() -> None:
        executor = scripted_executor(service)
        await executor.resume()
        await executor.drain()

    asyncio.run(next_start())
    final = service.views.iteration_status(owner, exp, number)
    assert (final.status, final.runs.queued, final.runs.running) == ("completed", 0, 0)


def test_a_submission_that_fails_is_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    _, exp, _ = scripted_iteration(service)

    async def submit_a_missing_iteration() -> None:
        executor = scripted_executor(service)
        executor.start(exp, 7)
        await executor.drain()

    with caplog.at_level(logging.ERROR, logger="tpc.executor"):
        asyncio.run(submit_a_missing_iteration())
    assert f"iteration {exp}/7 could not be submitted" in caplog.text
