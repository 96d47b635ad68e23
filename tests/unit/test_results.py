"""Results (docs/spec.md §7): scores, the environment comparison and iteration comparison."""

from __future__ import annotations

import pytest

from domain.results import RunRow, compare, public_scored, score, summarize


def row(task: str, env: str, status: str, **stats: float) -> RunRow:
    return RunRow(
        run_id=f"{task}-{env}-{status}",
        task_id=task,
        environment_id=env,
        status=status,
        stats=stats,
        signal_values={},
    )


ROWS = [
    row("t1", "a", "passed", duration=10, token_total=100, cost=0.1),
    row("t1", "b", "failed", duration=30, token_total=300, cost=0.3),
    row("t2", "a", "passed", duration=20, token_total=200, cost=0.2),
    row("t2", "b", "cancelled"),
    row("t2", "b", "timed_out", duration=60),
]


def test_score_leaves_cancelled_runs_out() -> None:
    assert score(ROWS) == pytest.approx(2 / 4)
    assert score([row("t", "e", "cancelled")]) is None


def test_summary_has_counts_task_scores_and_environment_comparison() -> None:
    summary = summarize(ROWS, {"t1": "Task one", "t2": "Task two"}, {"a": "A", "b": "B"}, None)[
        "summary"
    ]
    assert summary["runs"] == {
        "passed": 2,
        "failed": 1,
        "errored": 0,
        "timed_out": 1,
        "cancelled": 1,
    }
    task = public_scored(summary["tasks"][0], 0.95)
    assert task == {
        "task_id": "t1",
        "name": "Task one",
        "score": 0.5,
        "score_ci": [pytest.approx(0.0945, abs=1e-4), pytest.approx(0.9055, abs=1e-4)],
        "score_ci_method": "wilson",
        "runs": 2,
        "by_environment": {"a": 1.0, "b": 0.0},
    }
    env_a, env_b = summary["environments"]
    assert (env_a["score"], env_a["score_delta_to_best"]) == (1.0, 0.0)
    assert (env_b["score"], env_b["score_delta_to_best"]) == (0.0, -1.0)
    assert env_a["median_duration"] == 15
    assert env_b["median_duration"] == 45
    assert env_a["mean_tokens"] == 150
    assert env_b["mean_cost"] == pytest.approx(0.3)


def test_tasks_and_environments_without_runs_still_appear() -> None:
    summary = summarize([], {"t1": "T"}, {"a": "A"}, None)["summary"]
    assert summary["tasks"][0]["score"] is None
    assert summary["environments"][0]["runs"] == 0


def test_compare_gives_deltas_against_an_earlier_iteration() -> None:
    names = ({"t1": "T1", "t2": "T2"}, {"a": "A", "b": "B"})
    before = summarize(ROWS[:2], *names, None)
    after = summarize(ROWS, *names, None)
    result = compare(after, before, 1)
    assert result["iteration"] == 1
    assert result["score_delta"] == pytest.approx(0.5 - 0.5)
    t1 = next(t for t in result["tasks"] if t["task_id"] == "t1")
    assert (t1["score"], t1["previous"], t1["delta"]) == (0.5, 0.5, 0.0)
    t2 = next(t for t in result["tasks"] if t["task_id"] == "t2")
    assert (t2["previous"], t2["delta"]) == (None, None)


def _many(task: str, env: str, passed: int, runs: int) -> list[RunRow]:
    return [
        RunRow(f"{task}{env}{i}", task, env, "passed" if i < passed else "failed", {}, {})
        for i in range(runs)
    ]


def test_compare_gives_each_delta_an_interval_a_test_and_a_verdict() -> None:
    names = ({"t1": "T1", "t2": "T2", "t3": "T3"}, {"a": "A"})
    before = summarize(
        _many("t1", "a", 2, 20) + _many("t2", "a", 3, 20) + _many("t3", "a", 1, 20), *names, None
    )
    after = summarize(
        _many("t1", "a", 18, 20) + _many("t2", "a", 17, 20) + _many("t3", "a", 19, 20),
        *names,
        None,
    )
    result = compare(after, before, 1)
    assert result["score_delta"] == pytest.approx(48 / 60)
    assert set(result["score"]) == {"delta", "ci", "p_value", "p_adjusted", "verdict"}
    assert result["score"]["verdict"] == "significant"
    t1 = result["tasks"][0]
    assert (t1["score"], t1["previous"], t1["delta"]) == (0.9, 0.1, pytest.approx(0.8))
    assert t1["verdict"] == "significant" and t1["ci"][0] > 0
    assert t1["p_adjusted"] >= t1["p_value"]
    env = result["environments"][0]
    assert env["verdict"] == "significant"
    paired = result["paired"]
    assert paired["tasks"] == 3 and paired["method"] == "paired-t"
    assert paired["mean_delta"] == pytest.approx(0.8)
    assert paired["verdict"] == "significant"


def test_compare_marks_a_small_difference_not_significant() -> None:
    names = ({"t1": "T1"}, {"a": "A"})
    result = compare(
        summarize(_many("t1", "a", 10, 20), *names, None),
        summarize(_many("t1", "a", 9, 20), *names, None),
        1,
    )
    assert result["score"]["verdict"] == "not significant"
    assert result["tasks"][0]["verdict"] == "not significant"
    assert result["paired"]["verdict"] == "too few runs"  # one shared task
