"""Repeat stability: pass@k, pass^k, flaky pairs and the runs-needed hint, by hand."""

from __future__ import annotations

import pytest

from domain.repeat_stability import (
    Outcome,
    pass_at_k,
    pass_hat_k,
    repeat_stability,
    reported_ks,
    runs_needed,
)
from domain.results import RunRow, summarize


def test_pass_at_k_matches_hand_computed_values() -> None:
    # n=5, c=2: pass@1 = 2/5; pass@2 = 1 − C(3,2)/C(5,2) = 1 − 3/10; pass@3 = 1 − 1/10.
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)
    # With k > n − c every draw holds a pass.
    assert pass_at_k(5, 2, 4) == 1.0
    assert pass_at_k(5, 0, 5) == 0.0


def test_pass_hat_k_matches_hand_computed_values() -> None:
    # n=5, c=3: pass^1 = 3/5; pass^2 = C(3,2)/C(5,2) = 3/10; pass^3 = 1/10; pass^4 = 0.
    assert pass_hat_k(5, 3, 1) == pytest.approx(0.6)
    assert pass_hat_k(5, 3, 2) == pytest.approx(0.3)
    assert pass_hat_k(5, 3, 3) == pytest.approx(0.1)
    assert pass_hat_k(5, 3, 4) == 0.0
    assert pass_hat_k(4, 4, 4) == 1.0


def test_estimators_refuse_impossible_counts() -> None:
    with pytest.raises(ValueError, match=r"need 0 <= c <= n and 1 <= k <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match=r"need 0 <= c <= n and 1 <= k <= n"):
        pass_hat_k(3, 1, 0)


def test_reported_ks_are_all_up_to_ten_then_n() -> None:
    assert reported_ks(3) == [1, 2, 3]
    assert reported_ks(12) == [*range(1, 11), 12]


def test_runs_needed_matches_the_textbook_sample_size() -> None:
    # Fleiss' two-proportion formula: p1=0.5, p2=0.7, α=0.05 two-sided, 80% power → 93.
    assert runs_needed(0.5, 0.7) == 93
    assert runs_needed(0.7, 0.5) == 93
    assert runs_needed(0.6, 0.6) is None


def _outcomes(task: str, env: str, passes: list[bool]) -> list[Outcome]:
    return [Outcome(task, env, passed) for passed in passes]


def test_pairs_flaky_share_and_environments() -> None:
    outcomes = [
        *_outcomes("t1", "a", [True, True, True]),
        *_outcomes("t2", "a", [True, False, False]),
        *_outcomes("t1", "b", [False, False, False]),
        *_outcomes("t2", "b", [True, True, False]),
    ]
    stability = repeat_stability(outcomes)
    assert stability["repeats"] == 3
    assert stability["k"] == [1, 2, 3]
    pair = next(p for p in stability["pairs"] if (p["task_id"], p["environment_id"]) == ("t2", "a"))
    assert pair["runs"] == 3 and pair["passed"] == 1 and pair["flaky"] is True
    assert pair["pass_at_k"] == pytest.approx({"1": 1 / 3, "2": 2 / 3, "3": 1.0})
    assert pair["pass_hat_k"] == pytest.approx({"1": 1 / 3, "2": 0.0, "3": 0.0})
    assert stability["flaky_pairs"] == 2
    assert stability["flaky_share"] == 0.5
    # Means over the four pairs: pass^3 is 1 only for (t1, a).
    assert stability["pass_hat_k"]["3"] == pytest.approx(0.25)
    assert stability["pass_at_k"]["1"] == pytest.approx((1 + 1 / 3 + 0 + 2 / 3) / 4)
    envs = {e["environment_id"]: e for e in stability["environments"]}
    assert envs["a"]["score"] == pytest.approx(4 / 6)
    assert envs["a"]["runs_needed"] is None  # the best one
    assert envs["b"]["delta_to_best"] == pytest.approx(2 / 6 - 4 / 6)
    expected = runs_needed(2 / 6, 4 / 6)
    assert expected is not None
    assert envs["b"]["runs_needed"] == expected
    assert envs["b"]["repeats_needed"] == -(-expected // 2)  # two tasks share the runs
    # Per environment, the same means over its own pairs: b's (t1, b) never passes.
    assert (envs["b"]["pairs"], envs["b"]["flaky_pairs"]) == (2, 1)
    assert envs["b"]["pass_at_k"]["3"] == pytest.approx(0.5)
    assert envs["a"]["pass_hat_k"]["3"] == pytest.approx(0.5)


def test_without_repeats_there_are_no_pairs() -> None:
    stability = repeat_stability([Outcome("t1", "a", True), Outcome("t1", "b", False)])
    assert stability["repeats"] == 1
    assert stability["pairs"] == [] and stability["k"] == []
    assert stability["flaky_share"] is None
    assert stability["pass_at_k"] == {}


def test_summarize_adds_stability_leaving_cancelled_runs_out() -> None:
    rows = [
        RunRow("r1", "t1", "a", "passed", {}, {}),
        RunRow("r2", "t1", "a", "failed", {}, {}),
        RunRow("r3", "t1", "a", "cancelled", {}, {}),
    ]
    stability = summarize(rows, {"t1": "T"}, {"a": "A"}, None)["summary"]["stability"]
    assert stability["repeats"] == 2
    assert stability["pairs"][0]["runs"] == 2
    assert stability["flaky_share"] == 1.0
