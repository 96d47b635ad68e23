"""Task success (docs/spec.md §6.1)."""

from __future__ import annotations

import pytest

from domain.success import CriterionUnavailable, judge_status
from domain.transcripts import transcript_from_object

T = transcript_from_object(
    {
        "messages": [
            {"role": "user", "content": "Create a customer"},
            {"role": "assistant", "content": "Done: created cus_1 with the v1 API."},
        ]
    }
)


def test_without_criteria_a_completed_run_passes() -> None:
    assert judge_status(T, "completed", None) == "passed"
    assert judge_status(T, "max_steps", {}) == "failed"


def test_final_answer_and_excluded_patterns() -> None:
    assert judge_status(T, "completed", {"final_answer_regex": "^Done"}) == "passed"
    assert judge_status(T, "completed", {"final_answer_regex": "^Failed"}) == "failed"
    assert judge_status(T, "completed", {"transcript_excludes_regex": "v2"}) == "passed"
    assert judge_status(T, "completed", {"transcript_excludes_regex": "v1 API"}) == "failed"
    assert judge_status(T, "max_steps", {"final_answer_regex": "^Done"}) == "failed"


def test_criteria_this_agent_cannot_evaluate_are_an_error() -> None:
    with pytest.raises(CriterionUnavailable, match="'command' was not evaluated"):
        judge_status(T, "completed", {"command": "pytest"})
    with pytest.raises(CriterionUnavailable, match="'judge' was not evaluated"):
        judge_status(T, "completed", {"judge": {"model": "gpt-4o", "prompt": "ok?"}})


def test_checks_from_the_runner_and_the_judge_decide_their_criteria() -> None:
    command = {"command": "pytest", "final_answer_regex": "^Done"}
    assert judge_status(T, "completed", command, {"command": True}) == "passed"
    assert judge_status(T, "completed", command, {"command": False}) == "failed"
    judged = {"judge": {"model": "gpt-4o", "prompt": "ok?"}}
    assert judge_status(T, "completed", judged, {"judge": True}) == "passed"
    assert judge_status(T, "completed", judged, {"judge": False}) == "failed"
    assert judge_status(T, "timeout", judged, {"judge": True}) == "failed"
