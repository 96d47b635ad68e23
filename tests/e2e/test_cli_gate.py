"""The CI gate and repeat stability through the real `tpc` CLI and a real `tpc serve`.

Iteration 1 replays only passing transcripts (environment "steady"); iteration 2 adds a
"shaky" environment whose install-sdk repeats alternate pass / fail and whose webhook-setup
times out: a new failure the gate's `cluster:new` must see, and one flaky pair of four.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.server import Server, as_json

TRANSCRIPTS = ROOT / "examples" / "transcripts"
REPLAYS = {
    "steady": {
        "install-sdk": ["install-sdk__sonnet-docs"],
        "webhook-setup": ["webhook__sonnet-docs"],
    },
    "shaky": {
        "install-sdk": ["install-sdk__sonnet-docs", "install-sdk__gpt-nodocs"],
        "webhook-setup": ["webhook__gpt-nodocs"],
    },
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gate")
    for env, tasks in REPLAYS.items():
        folder = home / "replay" / env
        folder.mkdir(parents=True)
        for task, stems in tasks.items():
            recorded = [json.loads((TRANSCRIPTS / f"{stem}.json").read_text()) for stem in stems]
            (folder / f"{task}.json").write_text(json.dumps(recorded))
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    running = Server(home).start()
    yield running
    running.stop()


def _complete_iteration(server: Server, exp_id: str) -> None:
    as_json(server, "sim", "experiment", "run", exp_id)
    status = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert status["status"] == "completed"


@pytest.fixture(scope="module")
def experiment(server: Server, home: Path) -> str:
    """Two completed iterations: 1 on "steady" alone, 2 with "shaky" added."""
    tasks = [
        as_json(server, "sim", "task", "create", "--name", name, "--prompt", f"Please {name}")
        for name in REPLAYS["steady"]
    ]
    steady, shaky = (
        as_json(
            server,
            "sim",
            "env",
            "create",
            "--name",
            env,
            "--replay-dir",
            str(home / "replay" / env),
        )
        for env in REPLAYS
    )
    exp_id: str = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        "Gate",
        "--task-ids",
        ",".join(t["id"] for t in tasks),
        "--env-ids",
        steady["id"],
        "--repeats",
        "2",
    )["id"]
    _complete_iteration(server, exp_id)
    as_json(server, "sim", "experiment", "env", "add", exp_id, shaky["id"])
    _complete_iteration(server, exp_id)
    return exp_id


def _results(server: Server, exp_id: str, *args: str) -> Any:
    return server.tpc("--format", "json", "sim", "experiment", "results", exp_id, *args)


def test_score_threshold_exits_4_with_the_failed_condition(server: Server, experiment: str) -> None:
    failing = _results(server, experiment, "--fail-on", "score < 0.9")
    assert failing.returncode == 4, failing.stderr
    # 5 of 8 runs pass in iteration 2: steady 4 of 4, shaky install-sdk 1 of 2, webhook 0 of 2.
    assert "gate failed: score < 0.9: overall score is 0.625 (fails when < 0.9)" in failing.stderr
    document = json.loads(failing.stdout)
    assert document["gate"]["passed"] is False
    assert document["gate"]["failed"] == [
        {
            "expr": "score < 0.9",
            "value": 0.625,
            "detail": "overall score is 0.625 (fails when < 0.9)",
        }
    ]

    holding = _results(server, experiment, "--fail-on", "score < 0.5", "--fail-on", "score<0.6")
    assert holding.returncode == 0, holding.stderr
    assert "gate failed" not in holding.stderr
    assert json.loads(holding.stdout)["gate"]["passed"] is True


def test_cluster_new_sees_the_seeded_failure(server: Server, experiment: str) -> None:
    failing = _results(server, experiment, "--fail-on", "cluster:new")
    assert failing.returncode == 4, failing.stderr
    assert "gate failed: cluster:new: new failure clusters since iteration 1:" in failing.stderr
    document = json.loads(failing.stdout)
    assert document["compare"]["iteration"] == 1  # the previous iteration, by default
    assert document["gate"]["failed"][0]["value"] >= 1

    # Iteration 1 has nothing before it: the condition does not hold, and a note says why.
    first = _results(
        server,
        experiment,
        "--iteration",
        "1",
        "--fail-on",
        "cluster:new",
        "--fail-on",
        "regression",
    )
    assert first.returncode == 0, first.stderr
    assert "gate note: cluster:new: no earlier iteration to compare with" in first.stderr


def test_regression_passes_when_no_drop_is_significant(server: Server, experiment: str) -> None:
    done = _results(server, experiment, "--compare", "1", "--fail-on", "regression")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    (check,) = document["gate"]["checked"]
    assert check["holds"] is False
    # Every comparison carries a verdict; none of this data's drops (4 runs a side) is
    # significant.
    assert all(entry["verdict"] is not None for entry in document["compare"]["tasks"])
    assert check["value"] == 0


def test_regression_exits_4_on_a_seeded_significant_drop(server: Server, home: Path) -> None:
    """Iteration 1: 20 passing runs; iteration 2: the same tasks on an environment whose
    every run times out. The overall score's drop is significant: `regression` holds."""
    broken = home / "replay" / "broken"
    broken.mkdir(parents=True)
    timed_out = json.loads((TRANSCRIPTS / "webhook__gpt-nodocs.json").read_text())
    for task in REPLAYS["steady"]:
        (broken / f"{task}.json").write_text(json.dumps(timed_out))
    task_ids = ",".join(
        as_json(server, "sim", "task", "create", "--name", name, "--prompt", f"Please {name}")["id"]
        for name in REPLAYS["steady"]
    )
    steady, failing = (
        as_json(server, "sim", "env", "create", "--name", f"{env} 2", "--replay-dir", str(folder))[
            "id"
        ]
        for env, folder in (("steady", home / "replay" / "steady"), ("broken", broken))
    )
    exp_id: str = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        "seeded regression",
        "--task-ids",
        task_ids,
        "--env-ids",
        steady,
        "--repeats",
        "10",
    )["id"]
    _complete_iteration(server, exp_id)
    as_json(server, "sim", "experiment", "env", "remove", exp_id, steady)
    as_json(server, "sim", "experiment", "env", "add", exp_id, failing)
    _complete_iteration(server, exp_id)

    done = _results(server, exp_id, "--fail-on", "regression")
    assert done.returncode == 4, done.stderr
    assert "gate failed: regression" in done.stderr
    document = json.loads(done.stdout)
    assert document["compare"]["iteration"] == 1
    assert document["compare"]["score"]["verdict"] == "significant"
    assert document["compare"]["score"]["delta"] == -1.0
    assert document["gate"]["passed"] is False


def test_a_malformed_condition_is_a_usage_error_before_any_request(server: Server) -> None:
    done = server.tpc("sim", "experiment", "results", "exp_missing", "--fail-on", "score =< 1")
    assert done.returncode == 2
    assert "'score =< 1'" in done.stderr
    assert "signal:ID.FN OP NUMBER" in done.stderr
    assert "not found" not in done.stderr.lower()  # no request was made for exp_missing


def test_repeat_stability_in_json_and_table(server: Server, experiment: str) -> None:
    document = json.loads(_results(server, experiment).stdout)
    stability = document["summary"]["stability"]
    assert stability["repeats"] == 2 and stability["k"] == [1, 2]
    assert stability["flaky_pairs"] == 1
    assert stability["flaky_share"] == pytest.approx(0.25)
    flaky = [p for p in stability["pairs"] if p["flaky"]]
    assert [(p["runs"], p["passed"], p["pass_at_k"], p["pass_hat_k"]) for p in flaky] == [
        (2, 1, {"1": 0.5, "2": 1.0}, {"1": 0.5, "2": 0.0})
    ]
    hints = sorted(stability["environments"], key=lambda e: e["score"])
    assert hints[0]["score"] == pytest.approx(0.25) and hints[0]["runs_needed"] is not None
    assert hints[1]["score"] == 1.0 and hints[1]["runs_needed"] is None

    table = server.tpc(
        "sim",
        "experiment",
        "results",
        experiment,
        "--fail-on",
        "score < 0.5",
        "--fail-on",
        "cluster:new",
    )
    assert table.returncode == 4, table.stderr
    assert "Repeat stability (2 repeats)" in table.stdout
    assert "flaky pairs (some but not all repeats pass): 1 of 4 (25%)" in table.stdout
    assert "Gate: failed (1), 2 conditions checked" in table.stdout
    assert "✗ cluster:new: new failure clusters since iteration 1" in table.stdout


def test_the_dashboard_shows_repeat_stability(server: Server, experiment: str) -> None:
    session = server.dashboard_session()
    page = httpx.get(
        f"{server.url}/experiments/{experiment}/iterations/2",
        cookies={"tpc_session": session},
        timeout=30,
    )
    assert page.status_code == 200, page.text
    assert 'id="stability-table"' in page.text
    assert "1 of 4 task × environment pairs are flaky" in page.text
    # shaky: install-sdk passes 1 of 2 (pass@2 100%, pass^2 0%), webhook-setup 0 of 2.
    assert '<td>shaky</td><td class="num">2</td><td class="num">1</td>' in page.text
    first = httpx.get(
        f"{server.url}/experiments/{experiment}/iterations/1",
        cookies={"tpc_session": session},
        timeout=30,
    )
    assert first.status_code == 200 and "stability-table" in first.text  # repeats 2 there too
