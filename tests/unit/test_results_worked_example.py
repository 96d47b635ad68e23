"""The worked example of docs/results.md ("Uncertainty and significance"): every number the
page prints, computed through the same code the results use."""

from __future__ import annotations

import pytest

from domain.comparisons import compare_environments
from domain.results import RunRow, public_summary, summarize


def _rows(env: str, passed: int, runs: int = 20) -> list[RunRow]:
    return [
        RunRow(f"{env}{i}", "t", env, "passed" if i < passed else "failed", {}, {})
        for i in range(runs)
    ]


def test_the_worked_example_of_docs_results() -> None:
    stored = summarize(
        _rows("a", 18) + _rows("b", 4) + _rows("c", 10),
        {"t": "T"},
        {"a": "A", "b": "B", "c": "C"},
        None,
    )["summary"]
    summary = public_summary(stored, 0.95)
    compare_environments(stored["environments"], summary["environments"], None, 0.95)
    a, b, c = summary["environments"]

    assert [round(x, 2) for x in a["score_ci"]] == [0.70, 0.97]
    assert [round(x, 2) for x in b["score_ci"]] == [0.08, 0.42]
    assert a["comparison"] is None  # the best is the baseline

    b_vs_a, c_vs_a = b["comparison"]["score"], c["comparison"]["score"]
    assert b["comparison"]["baseline"] == "a"
    assert b_vs_a["delta"] == pytest.approx(-0.70)
    assert [round(x, 2) for x in b_vs_a["ci"]] == [-0.84, -0.40]
    assert b_vs_a["p_value"] == pytest.approx(0.0000166, abs=1e-7)
    assert c_vs_a["delta"] == pytest.approx(-0.40)
    assert [round(x, 2) for x in c_vs_a["ci"]] == [-0.61, -0.12]
    assert round(c_vs_a["p_value"], 4) == 0.0138
    # Holm over the two score tests (means have no values here, so no test).
    assert b_vs_a["p_adjusted"] == pytest.approx(2 * b_vs_a["p_value"])
    assert c_vs_a["p_adjusted"] == pytest.approx(c_vs_a["p_value"])
    assert (b_vs_a["verdict"], c_vs_a["verdict"]) == ("significant", "significant")


def test_ten_of_twenty_against_nine_is_not_significant() -> None:
    stored = summarize(_rows("c", 10) + _rows("d", 9), {"t": "T"}, {"c": "C", "d": "D"}, None)[
        "summary"
    ]
    summary = public_summary(stored, 0.95)
    compare_environments(stored["environments"], summary["environments"], "C", 0.95)
    near = summary["environments"][1]["comparison"]["score"]
    assert near["delta"] == pytest.approx(-0.05)
    assert near["p_value"] == pytest.approx(1.0)
    assert near["verdict"] == "not significant"
