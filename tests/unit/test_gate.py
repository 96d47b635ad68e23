"""The CI gate: --fail-on parsing (valid and malformed) and evaluation over hand-built results
documents that follow the results contract (docs/results.md)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.gate import GateSyntaxError, evaluate, parse_condition, parse_conditions


@pytest.mark.parametrize(
    ("text", "kind", "target", "op", "threshold"),
    [
        ("score < 0.8", "score", None, "<", 0.8),
        ("score<=0.8", "score", None, "<=", 0.8),
        ("  score   >=   1 ", "score", None, ">=", 1.0),
        ("score != 0.5", "score", None, "!=", 0.5),
        ("env:Claude.score < 0.7", "env", "Claude", "<", 0.7),
        ("env:env_123.score == 1", "env", "env_123", "==", 1.0),
        ("task:Sign in.score < 0.5", "task", "Sign in", "<", 0.5),
        ("signal:auth-errors.rate > 0.2", "signal", "auth-errors.rate", ">", 0.2),
        ("signal:tool_calls_avg >= -3", "signal", "tool_calls_avg", ">=", -3.0),
        ("regression", "regression", None, None, None),
        ("cluster:new", "cluster_new", None, None, None),
    ],
)
def test_valid_conditions_parse(
    text: str, kind: str, target: str | None, op: str | None, threshold: float | None
) -> None:
    condition = parse_condition(text)
    assert (condition.kind, condition.target, condition.op, condition.threshold) == (
        kind,
        target,
        op,
        threshold,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "score",
        "score < ",
        "score < high",
        "score < nan",
        "score < inf",
        "score = 0.8",
        "score =< 0.8",
        "scores < 0.8",
        "env:.score < 0.7",
        "env:Claude < 0.7",
        "task:x.pass_rate < 0.5",
        "signal: < 0.2",
        "regressions",
        "cluster:old",
        "regression < 1",
    ],
)
def test_malformed_conditions_are_refused_with_the_grammar(text: str) -> None:
    with pytest.raises(GateSyntaxError) as refused:
        parse_condition(text)
    assert "score OP NUMBER" in str(refused.value)
    assert "cluster:new" in str(refused.value)


def _results(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "experiment_id": "exp_1",
        "iteration": 2,
        "summary": {
            "score": 0.75,
            "tasks": [
                {"task_id": "tsk_a", "name": "Sign in", "score": 0.5},
                {"task_id": "tsk_b", "name": "Sign up", "score": 1.0},
            ],
            "environments": [
                {"environment_id": "env_c", "name": "Claude", "score": 0.6},
                {"environment_id": "env_g", "name": "GPT", "score": 0.9},
            ],
        },
        "aggregates": [
            {"id": "auth_rate", "signal_id": "auth-errors", "fn": "rate", "value": 0.25},
            {"id": "tools", "signal_id": "tool-calls", "fn": "distribution", "value": {"a": 1}},
        ],
        "failure_clusters": [{"category": "Auth failures", "size": 2, "run_ids": ["r1", "r2"]}],
    }
    document.update(extra)
    return document


def _gate(results: dict[str, Any], *texts: str, clusters: Any = None) -> dict[str, Any]:
    return evaluate(parse_conditions(texts), results, clusters).to_json()


def test_thresholds_on_score_environment_task_and_signal() -> None:
    gate = _gate(
        _results(),
        "score < 0.8",
        "score < 0.7",
        "env:Claude.score < 0.7",
        "env:env_g.score < 0.7",
        "task:Sign in.score <= 0.5",
        "signal:auth-errors.rate > 0.2",
        "signal:auth_rate > 0.3",
        "signal:auth_rate.rate >= 0.25",
    )
    holds = {c["expr"]: c["holds"] for c in gate["checked"]}
    assert holds == {
        "score < 0.8": True,
        "score < 0.7": False,
        "env:Claude.score < 0.7": True,
        "env:env_g.score < 0.7": False,
        "task:Sign in.score <= 0.5": True,
        "signal:auth-errors.rate > 0.2": True,
        "signal:auth_rate > 0.3": False,
        "signal:auth_rate.rate >= 0.25": True,
    }
    assert gate["passed"] is False
    failed = {f["expr"]: f for f in gate["failed"]}
    assert failed["score < 0.8"]["value"] == 0.75
    assert "0.75" in failed["score < 0.8"]["detail"] and "< 0.8" in failed["score < 0.8"]["detail"]


def test_a_gate_that_holds_passes() -> None:
    gate = _gate(_results(), "score < 0.5", "env:GPT.score < 0.8")
    assert gate["passed"] is True and gate["failed"] == []
    assert len(gate["checked"]) == 2


def test_missing_values_fail_safe_with_a_reason() -> None:
    results = _results()
    results["summary"]["score"] = None
    gate = _gate(
        results, "score < 0.8", "env:Nobody.score < 0.7", "signal:tools > 1", "signal:x.avg > 1"
    )
    assert gate["passed"] is False
    details = {f["expr"]: f["detail"] for f in gate["failed"]}
    assert len(details) == 4
    assert "no environment named 'Nobody' (known: Claude, GPT)" in details["env:Nobody.score < 0.7"]
    assert "no numeric value" in details["signal:tools > 1"]
    assert "no aggregate matches 'x.avg'" in details["signal:x.avg > 1"]


def _compare(**fields: Any) -> dict[str, Any]:
    entry = {"delta": 0.0, "ci": [-0.1, 0.1], "p_value": 0.9, "p_adjusted": 1.0}
    compare: dict[str, Any] = {
        "iteration": 1,
        "score_delta": -0.1,
        "score": {**entry, "delta": -0.1, "verdict": "not significant"},
        "tasks": [
            {"task_id": "tsk_a", **entry, "verdict": "not significant"},
            {"task_id": "tsk_b", **entry, "verdict": "too few runs"},
        ],
        "environments": [{"environment_id": "env_c", **entry, "verdict": "not significant"}],
        "aggregates": [{"id": "auth_rate", **entry, "delta": 0.2, "verdict": "significant"}],
    }
    compare.update(fields)
    return compare


def test_regression_holds_on_a_significant_score_drop() -> None:
    compare = _compare()
    compare["environments"][0].update(delta=-0.3, p_adjusted=0.01, verdict="significant")
    gate = _gate(_results(compare=compare), "regression")
    assert gate["passed"] is False
    (failed,) = gate["failed"]
    assert failed["value"] == 1
    assert "environment Claude -30 pts (p_adj 0.01)" in failed["detail"]


def test_regression_ignores_significant_rises_and_aggregates() -> None:
    compare = _compare()
    compare["tasks"][0].update(delta=0.4, verdict="significant")
    gate = _gate(_results(compare=compare), "regression")
    assert gate["passed"] is True
    (check,) = gate["checked"]
    assert check["value"] == 0
    assert "1 with too few runs to judge" in check["detail"]
    assert "aggregate changes not counted (direction unknown): auth_rate" in check["detail"]


def test_regression_without_significance_fields_says_so() -> None:
    compare = {
        "iteration": 1,
        "score_delta": -0.5,
        "tasks": [{"task_id": "tsk_a", "score": 0.0, "previous": 1.0, "delta": -1.0}],
        "environments": [],
        "aggregates": [],
    }
    gate = _gate(_results(compare=compare), "regression")
    assert gate["passed"] is True
    assert "carries no significance verdicts" in gate["checked"][0]["detail"]


def test_regression_and_new_clusters_without_an_earlier_iteration() -> None:
    gate = _gate(_results(), "regression", "cluster:new", clusters=None)
    assert gate["passed"] is True
    assert all("no earlier iteration" in c["detail"] for c in gate["checked"])


def test_cluster_new_compares_categories() -> None:
    results = _results(compare=_compare())
    results["failure_clusters"].append({"category": "Timeouts", "size": 1, "run_ids": ["r3"]})
    gate = _gate(results, "cluster:new", clusters=[{"category": "auth failures"}])
    (failed,) = gate["failed"]
    assert failed["value"] == 1
    assert failed["detail"] == "new failure clusters since iteration 1: Timeouts (1 run)"
    both_known = [{"category": "Auth failures"}, {"category": "Timeouts"}]
    assert _gate(results, "cluster:new", clusters=both_known)["passed"] is True


def test_cluster_new_compares_cause_keys_not_names() -> None:
    results = _results(compare=_compare())
    results["failure_clusters"] = [
        {"key": "auth", "category": "Authentication failures", "size": 2, "run_ids": ["r1"]},
        {"key": "doc_loop", "category": "Docs loops", "size": 1, "run_ids": ["r3"]},
    ]
    # The model renamed iteration 1's auth cluster: still the same cause.
    before = [{"key": "auth", "category": "API key confusion", "size": 4}]
    gate = _gate(results, "cluster:new", clusters=before)
    (failed,) = gate["failed"]
    assert failed["detail"] == "new failure clusters since iteration 1: Docs loops (1 run)"
