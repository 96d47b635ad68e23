"""Intervals and verdicts through a real `tpc serve` and the real CLI: a replay
experiment whose environments have known pass rates gives the expected verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.server import Server, as_json, iteration_ended

REPEATS = 20
# environment name -> passed runs out of REPEATS
PASSES = {"strong": 18, "weak": 4, "half": 10, "near-half": 9}
CONFIG = """\
version: 1
signals:
  - id: answered
    name: Answered
    type: boolean
    source: finalAnswer
    extract:
      method: pattern
      patterns:
        - name: ok
          regex: "^OK"
aggregates:
  - {id: answered-rate, signal_id: answered, fn: rate, label: Answered}
  - {id: answered-count, signal_id: answered, fn: count_where, where: {eq: true}, label: Count}
"""


def transcript(passed: bool, tokens: int) -> dict[str, Any]:
    return {
        "version": 1,
        "status": "passed" if passed else "failed",
        "termination_reason": "completed",
        "stats": {"token_in": tokens, "token_out": 10},
        "messages": [
            {"role": "user", "content": "Do it."},
            {"role": "assistant", "content": "OK done" if passed else "gave up"},
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("significance")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def experiment(server: Server) -> dict[str, Any]:
    with server.client() as client:
        task = client.post("/v1/tasks", json={"name": "install", "prompt": "Install it."}).json()
        envs = {}
        for name, passes in PASSES.items():
            runs = [transcript(i < passes, 100 + 7 * i) for i in range(REPEATS)]
            created = client.post(
                "/v1/environments",
                json={"name": name, "agent": {"kind": "replay", "transcripts": {"install": runs}}},
            )
            assert created.status_code == 201, created.text
            envs[name] = created.json()["id"]
        exp = client.post(
            "/v1/experiments",
            json={
                "name": "significance",
                "task_ids": [task["id"]],
                "env_ids": list(envs.values()),
                "repeats": REPEATS,
                "signal_config": CONFIG,
            },
        ).json()
        assert client.post(f"/v1/experiments/{exp['id']}/iterations").status_code in (200, 201)
        status = iteration_ended(client, f"/v1/experiments/{exp['id']}/iterations/1", 90)
        assert status["status"] == "completed", status
    return {"id": exp["id"], "envs": envs}


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in document["summary"]["environments"]}


def test_each_environment_is_compared_with_the_best(
    server: Server, experiment: dict[str, Any]
) -> None:
    with server.client() as client:
        answer = client.get(f"/v1/experiments/{experiment['id']}/iterations/1/results")
    assert answer.status_code == 200, answer.text
    envs = _by_name(answer.json())
    assert envs["strong"]["comparison"] is None  # the best is the baseline
    assert envs["strong"]["score_ci_method"] == "wilson"
    low, high = envs["strong"]["score_ci"]
    assert low < 0.9 < high
    weak = envs["weak"]["comparison"]
    assert weak["baseline"] == experiment["envs"]["strong"]
    assert weak["score"]["delta"] == pytest.approx(4 / 20 - 18 / 20)
    assert weak["score"]["verdict"] == "significant"
    assert weak["score"]["p_value"] == pytest.approx(1.6643814e-05, rel=1e-4)
    assert weak["score"]["p_adjusted"] >= weak["score"]["p_value"]
    assert weak["score"]["ci"][1] < 0
    assert set(weak) == {"baseline", "score", "median_duration", "mean_tokens", "mean_cost"}
    for entry in ("score", "mean_tokens"):
        assert set(weak[entry]) == {"delta", "ci", "p_value", "p_adjusted", "verdict", "method"}


def test_a_named_baseline_and_a_confidence_through_the_cli(
    server: Server, experiment: dict[str, Any]
) -> None:
    document = as_json(
        server,
        "sim", "experiment", "results", experiment["id"],
        "--baseline", "half", "--confidence", "0.99",
    )  # fmt: skip
    envs = _by_name(document)
    assert envs["half"]["comparison"] is None
    near = envs["near-half"]["comparison"]["score"]
    assert near["delta"] == pytest.approx(-0.05)
    assert near["verdict"] == "not significant"
    at_95 = as_json(server, "sim", "experiment", "results", experiment["id"])
    narrower, wider = _by_name(at_95)["half"]["score_ci"], envs["half"]["score_ci"]
    assert wider[0] < narrower[0] and narrower[1] < wider[1]
    table = server.tpc("sim", "experiment", "results", experiment["id"])
    assert table.returncode == 0, table.stderr
    assert "▼" in table.stdout and "·" in table.stdout
    assert "[0.70, 0.97]" in table.stdout  # 18/20 with its Wilson interval


def test_unknown_baseline_and_confidence_are_refused(
    server: Server, experiment: dict[str, Any]
) -> None:
    path = f"/v1/experiments/{experiment['id']}/iterations/1"
    with server.client() as client:
        bad = client.get(f"{path}/results", params={"confidence": "0.5"})
        unknown = client.get(f"{path}/results", params={"baseline": "nope"})
        signals = client.get(f"{path}/signals", params={"confidence": "0.8"})
    for answer, loc in ((bad, "confidence"), (unknown, "baseline"), (signals, "confidence")):
        assert answer.status_code == 422, answer.text
        assert [p["loc"] for p in answer.json()["error"]["problems"]] == [loc]
    done = server.tpc("sim", "experiment", "results", experiment["id"], "--baseline", "nope")
    assert done.returncode == 1
    assert "no environment 'nope'" in done.stderr


def test_signal_aggregates_carry_intervals(server: Server, experiment: dict[str, Any]) -> None:
    report = as_json(server, "sim", "experiment", "signals", experiment["id"])
    rate, count = report["aggregates"]
    assert rate["ci_method"] == "wilson"
    assert rate["value"] == pytest.approx(41 / 80)
    assert rate["ci"][0] < rate["value"] < rate["ci"][1]
    weak = rate["by_environment"][experiment["envs"]["weak"]]
    assert weak["value"] == pytest.approx(0.2) and weak["ci_method"] == "wilson"
    assert weak["ci"] == [pytest.approx(0.0807, abs=1e-4), pytest.approx(0.4160, abs=1e-4)]
    assert (count["ci"], count["ci_method"]) == (None, None)
    assert "intervals" not in rate and "figures" not in rate


def test_an_unchanged_iteration_compares_as_not_significant(
    server: Server, experiment: dict[str, Any]
) -> None:
    with server.client() as client:
        path = f"/v1/experiments/{experiment['id']}/iterations"
        assert client.post(path).status_code in (200, 201)
        iteration_ended(client, f"{path}/2", 90)
    document = as_json(
        server, "sim", "experiment", "results", experiment["id"], "--iteration", "2",
        "--compare", "1",
    )  # fmt: skip
    compared = document["compare"]
    assert compared["score_delta"] == 0
    assert compared["score"]["delta"] == 0
    assert compared["score"]["verdict"] == "not significant"
    for section in ("tasks", "environments", "aggregates"):
        for entry in compared[section]:
            assert {"delta", "ci", "p_value", "p_adjusted", "verdict"} <= set(entry)
    assert all(e["verdict"] == "not significant" for e in compared["environments"])
    rate, count = compared["aggregates"]
    assert rate["verdict"] == "not significant"
    assert (count["p_value"], count["verdict"]) == (None, None)  # a count is not tested
    assert compared["paired"]["tasks"] == 1
    assert compared["paired"]["verdict"] == "too few runs"
