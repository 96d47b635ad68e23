"""Reading a judge's answer and a simulated user's reply: pure functions over model output."""

from __future__ import annotations

import pytest

from domain.signals.judging import JudgeRequest, JudgeVerdict
from infra.llm.chat import ChatResponse, Text, ToolCall, Usage
from infra.llm.judge import MAX_TEXT_CHARS, VERDICT_TOOL, question, read_verdict, verdict_tool
from infra.llm.simulated_user import is_done

BOOLEAN = JudgeRequest("s", None, "claude-haiku-4-5", "Polite?", "Thanks!", "boolean")
CATEGORY = JudgeRequest("c", 2, "gpt-4o", "Mood?", "Ugh", "category", ("calm", "upset"))


def answered(tool_input: dict[str, object] | None = None, text: str = "") -> ChatResponse:
    content: list[Text | ToolCall] = [Text(text)] if text else []
    if tool_input is not None:
        content.append(ToolCall("t1", VERDICT_TOOL, dict(tool_input)))
    return ChatResponse(tuple(content), "tool_use", Usage(1, 1), "m")


@pytest.mark.parametrize(
    ("raw", "value"), [(True, True), (False, False), ("yes", True), ("False", False)]
)
def test_boolean_answers(raw: object, value: bool) -> None:
    verdict = read_verdict(BOOLEAN, answered({"answer": raw, "excerpt": " Thanks! "}))
    assert verdict == JudgeVerdict(value, "Thanks!")


def test_category_answers_take_the_declared_spelling() -> None:
    assert read_verdict(CATEGORY, answered({"answer": "UPSET", "excerpt": "Ugh"})).value == "upset"
    wrong = read_verdict(CATEGORY, answered({"answer": "angry", "excerpt": "Ugh"}))
    assert (wrong.value, wrong.error) == (None, "the judge answered 'angry', not calm, upset")


def test_an_excerpt_is_at_most_a_snippet_long() -> None:
    verdict = read_verdict(BOOLEAN, answered({"answer": True, "excerpt": "x" * 500}))
    assert len(verdict.excerpt) == 200


def test_without_an_answer_there_is_no_value() -> None:
    assert read_verdict(BOOLEAN, answered(text="Probably.")).error == (
        "the judge gave no structured answer (it said 'Probably.')"
    )
    assert read_verdict(BOOLEAN, answered({"excerpt": "x"})).value is None
    assert read_verdict(BOOLEAN, answered(text='{"answer": true, "excerpt": "ok"}')).value is True


def test_the_question_states_the_answer_and_the_schema_constrains_it() -> None:
    assert "Answer with exactly one of: calm, upset." in question(CATEGORY)
    assert verdict_tool(CATEGORY).input_schema["properties"]["answer"]["enum"] == ["calm", "upset"]
    assert "Answer true or false." in question(BOOLEAN)
    huge = JudgeRequest("s", None, "m", "Q?", "a" * MAX_TEXT_CHARS + "TAIL", "boolean")
    asked = question(huge)
    assert "characters omitted" in asked and asked.rstrip().endswith("TAIL\n</text>")
    assert len(asked) < MAX_TEXT_CHARS + 500


@pytest.mark.parametrize("text", ["DONE", "done.", " `DONE` ", '"Done!"', ""])
def test_the_simulated_user_is_done(text: str) -> None:
    assert is_done(text)


@pytest.mark.parametrize("text", ["Not done yet", "DONE? No, one more thing."])
def test_the_simulated_user_is_not_done(text: str) -> None:
    assert not is_done(text)
