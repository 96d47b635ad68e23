"""The real `tpc` against a real `tpc serve`: tables show tasks and environments by name, and
ids (what a user copies) whole, on a narrow terminal too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.server import Server, as_json

ENVIRONMENTS = ("Claude Sonnet 4.5 + docs v1", "Claude Sonnet 4.5 + docs v2")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("names")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def iteration(server: Server) -> dict[str, Any]:
    task = as_json(server, "sim", "task", "create", "--name", "install-sdk", "--prompt", "p")
    env_file = server.home / "env.yaml"
    envs = []
    for name in ENVIRONMENTS:
        env_file.write_text(f"name: {name}\nagent: {{kind: scripted, skill: 0.5}}\n")
        envs.append(as_json(server, "sim", "env", "create", "--file", str(env_file)))
    experiment = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        "Names",
        "--task-ids",
        task["id"],
        "--env-ids",
        ",".join(env["id"] for env in envs),
        "--signal-config",
        str(ROOT / "examples" / "signals.yaml"),
        "--repeats",
        "2",
    )
    as_json(server, "sim", "experiment", "run", experiment["id"])
    as_json(server, "sim", "experiment", "run", "status", experiment["id"], "--watch")
    runs = as_json(server, "sim", "experiment", "runs", experiment["id"])["items"]
    return {"task": task, "envs": envs, "experiment": experiment, "runs": runs}


def table(server: Server, columns: int, *args: str) -> str:
    server.environ["COLUMNS"] = str(columns)
    try:
        done = server.tpc(*args)
    finally:
        server.environ.pop("COLUMNS")
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [80, 200])
def test_experiment_runs_names_tasks_and_environments(
    server: Server, iteration: dict[str, Any], columns: int
) -> None:
    shown = table(server, columns, "sim", "experiment", "runs", iteration["experiment"]["id"])
    for run in iteration["runs"]:
        assert run["id"] in shown  # whole, never wrapped
    for env in iteration["envs"]:
        assert env["id"] not in shown
    if columns == 200:
        assert all(name in shown for name in ENVIRONMENTS)
        assert "install-sdk" in shown


def test_signals_by_environment_is_headed_by_names(
    server: Server, iteration: dict[str, Any]
) -> None:
    shown = table(server, 250, "sim", "experiment", "signals", iteration["experiment"]["id"])
    by_environment = shown[shown.index("By environment") :]
    header = by_environment.splitlines()[2]
    assert all(name in header for name in ENVIRONMENTS)
    assert not any(env["id"] in shown for env in iteration["envs"])


def test_run_logs_and_get_name_the_task_and_environment(
    server: Server, iteration: dict[str, Any]
) -> None:
    run = iteration["runs"][0]
    env_name = next(e["name"] for e in iteration["envs"] if e["id"] == run["environment_id"])
    logs = table(server, 200, "sim", "run", "logs", run["id"])
    assert logs.splitlines()[0].startswith(f"install-sdk × {env_name}")
    details = table(server, 200, "sim", "run", "get", run["id"])
    assert f"{env_name} ({run['environment_id']})" in details


def test_history_names_what_was_attached(server: Server, iteration: dict[str, Any]) -> None:
    shown = table(server, 250, "sim", "experiment", "history", iteration["experiment"]["id"])
    task = iteration["task"]
    assert f'task "install-sdk" ({task["id"]}) attached' in shown
    assert "History (" in shown and " events)" in shown
