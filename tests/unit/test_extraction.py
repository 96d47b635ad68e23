"""Per-run extraction (docs/spec.md §4.4–4.5): values, folds and evidence for each method and
scope."""

from __future__ import annotations

from typing import Any

import pytest

from domain.signals.config import SignalConfig
from domain.signals.extraction import MAX_EVIDENCE, NO_JUDGE, Extractor, SignalValue
from domain.signals.judging import JudgeVerdict
from domain.signals.validation import validate_signal_config
from domain.stats import derive_stats
from domain.transcripts import Transcript, transcript_from_object


def config(*signals: dict[str, Any]) -> SignalConfig:
    return validate_signal_config({"version": 1, "signals": list(signals)}).require_valid()


def extract(
    transcript: Transcript, *signals: dict[str, Any], **kwargs: Any
) -> dict[str, SignalValue]:
    return Extractor(config(*signals)).extract(transcript, derive_stats(transcript), **kwargs)


def pattern_signal(**fields: Any) -> dict[str, Any]:
    extract = fields.pop("extract", {})
    return {
        "id": "s",
        "name": "S",
        "type": "boolean",
        "extract": {"method": "pattern", **extract},
        **fields,
    }


def conversation(*messages: tuple[str, Any]) -> Transcript:
    return transcript_from_object({"messages": [{"role": r, "content": c} for r, c in messages]})


def test_message_scoped_patterns_count_matching_messages_with_evidence(golden: Transcript) -> None:
    values = extract(
        golden,
        pattern_signal(
            scope="message",
            target_role="assistant",
            fold={"fn": "count"},
            extract={"patterns": [{"name": "acme", "regex": "acme"}]},
        ),
    )
    value = values["s"]
    # Messages 2 (thinking + tool call) and 4 (code) mention acme; 7 and 8 do not.
    assert value.value == 2
    assert [(e.event, e.pattern) for e in value.evidence] == [(2, "acme"), (4, "acme")]
    assert "acme" in value.evidence[0].snippet


def test_every_message_of_the_role_is_one_observation_even_when_empty(golden: Transcript) -> None:
    values = extract(
        golden,
        {
            "id": "s",
            "name": "S",
            "type": "number",
            "scope": "message",
            "target_role": "assistant",
            "source": "assistantText",
            "fold": {"fn": "average"},
            "extract": {"method": "pattern", "needle": "a"},
        },
    )
    # assistantText of messages 2, 4, 7, 8: "Let me check the docs." (0 'a'), the code message
    # (4 'a': Now..., import acme, acme..., name="Ada"... counted below), "Created customer
    # cus_1." (1), and "" for the tool-call-only message 8 (0).
    code_message = (
        'Now:\n```python\nimport acme\nacme.Customer.create(name="Ada")\n```\nRunning it.'
    )
    expected = (0 + code_message.count("a") + "Created customer cus_1.".count("a") + 0) / 4
    assert values["s"].value == expected


def test_run_scoped_patterns_give_one_evidence_per_matching_message(golden: Transcript) -> None:
    values = extract(
        golden,
        pattern_signal(
            source="toolCalls",
            extract={
                "patterns": [
                    {"name": "write", "regex": "write_file"},
                    {"name": "shell", "regex": "^shell|\\nshell"},
                ]
            },
        ),
    )
    value = values["s"]
    assert value.value is True
    assert [(e.event, e.pattern) for e in value.evidence] == [
        (2, "shell"),
        (4, "write"),
        (8, "shell"),
    ]


def test_run_scoped_needle_counts_every_match_and_attributes_it_to_its_message(
    golden: Transcript,
) -> None:
    values = extract(
        golden,
        {
            "id": "n",
            "name": "N",
            "type": "number",
            "source": "toolCalls",
            "extract": {"method": "pattern", "needle": "\\nshell|^shell"},
        },
    )
    # The second call starts with the newline that joins two parts: it belongs to message 8.
    assert values["n"].value == 2
    assert [e.event for e in values["n"].evidence] == [2, 8]


def test_multiline_needles_match_each_part_start(golden: Transcript) -> None:
    values = extract(
        golden,
        {
            "id": "n",
            "name": "N",
            "type": "number",
            "source": "toolCalls",
            "extract": {"method": "pattern", "needle": "(?m)^(shell|write_file) "},
        },
    )
    assert values["n"].value == 3
    assert [e.event for e in values["n"].evidence] == [2, 4, 8]


def test_ignore_case(golden: Transcript) -> None:
    signal = pattern_signal(
        source="assistantText", extract={"patterns": [{"name": "p", "regex": "CREATED CUSTOMER"}]}
    )
    assert extract(golden, signal)["s"].value is False
    signal["extract"]["ignore_case"] = True
    assert extract(golden, signal)["s"].value is True


def test_final_answer_evidence_points_at_its_message(golden: Transcript) -> None:
    values = extract(
        golden,
        pattern_signal(
            source="finalAnswer", extract={"patterns": [{"name": "p", "regex": "cus_\\d"}]}
        ),
    )
    assert values["s"].value is True
    assert [(e.event, e.snippet) for e in values["s"].evidence] == [(7, "Created customer cus_1.")]


def test_snippets_are_at_most_200_characters_around_the_match() -> None:
    text = "é" * 500 + "NEEDLE" + "ü" * 500
    values = extract(
        conversation(("assistant", text)),
        pattern_signal(
            source="assistantText", extract={"patterns": [{"name": "p", "regex": "NEEDLE"}]}
        ),
    )
    snippet = values["s"].evidence[0].snippet
    assert len(snippet) == 200
    assert "NEEDLE" in snippet
    assert set(snippet) == {"é", "ü", "N", "E", "D", "L"}


def test_a_long_match_is_cut_to_200_characters() -> None:
    values = extract(
        conversation(("assistant", "x" * 1000)),
        pattern_signal(
            source="assistantText", extract={"patterns": [{"name": "p", "regex": "x+"}]}
        ),
    )
    assert values["s"].evidence[0].snippet == "x" * 200


def test_snippets_stay_inside_their_message() -> None:
    transcript = conversation(("assistant", "first message"), ("assistant", "second HIT here"))
    values = extract(
        transcript,
        pattern_signal(
            source="assistantText", extract={"patterns": [{"name": "p", "regex": "HIT"}]}
        ),
    )
    assert [(e.event, e.snippet) for e in values["s"].evidence] == [(1, "second HIT here")]


def test_an_empty_match_in_a_source_with_no_parts_is_a_value_without_evidence() -> None:
    # No tool calls: `toolCalls` is the empty text, where only an empty match is found.
    transcript = conversation(("user", "hi"), ("assistant", "no tools needed"))
    values = extract(
        transcript,
        pattern_signal(
            id="any", source="toolCalls", extract={"patterns": [{"name": "e", "regex": "x*"}]}
        ),
        pattern_signal(id="n", type="number", source="toolCalls", extract={"needle": "x*"}),
        pattern_signal(
            id="none", source="toolCalls", extract={"patterns": [{"name": "x", "regex": "x"}]}
        ),
    )
    assert {sid: value.to_json() for sid, value in values.items()} == {
        "any": {"value": True, "evidence": []},
        "n": {"value": 1, "evidence": []},
        "none": {"value": False, "evidence": []},
    }


@pytest.mark.timeout(60)
def test_a_catastrophic_regex_runs_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in Python's re: 2^40 steps here. RE2 never backtracks.
    hostile = "a" * 40 + "!"
    big = ("a" * 100_000 + "!") * 20
    transcript = conversation(("assistant", hostile), ("tool", big))
    values = extract(
        transcript,
        {
            "id": "h",
            "name": "H",
            "type": "boolean",
            "scope": "message",
            "target_role": "assistant",
            "fold": {"fn": "count"},
            "extract": {"method": "pattern", "patterns": [{"name": "evil", "regex": "(a+)+$"}]},
        },
        {
            "id": "n",
            "name": "N",
            "type": "number",
            "source": "any",
            "extract": {"method": "pattern", "needle": "(a|aa)+b"},
        },
    )
    assert values["h"].value == 0
    assert values["n"].value == 0


def test_evidence_is_capped_but_the_value_is_not() -> None:
    transcript = conversation(*[("assistant", "hit")] * (MAX_EVIDENCE + 10))
    values = extract(
        transcript,
        pattern_signal(
            scope="message",
            target_role="assistant",
            fold={"fn": "count"},
            extract={"patterns": [{"name": "p", "regex": "hit"}]},
        ),
    )
    assert values["s"].value == MAX_EVIDENCE + 10
    assert len(values["s"].evidence) == MAX_EVIDENCE


def test_histogram_fold_counts_observations() -> None:
    transcript = conversation(("tool", "error"), ("tool", "ok"), ("tool", "error!"), ("user", "x"))
    values = extract(
        transcript,
        pattern_signal(
            scope="message",
            target_role="tool",
            fold={"fn": "histogram"},
            extract={"patterns": [{"name": "p", "regex": "error"}]},
        ),
    )
    assert values["s"].value == {"false": 1, "true": 2}


def test_stats_signals_read_run_stats_with_evidence(golden: Transcript) -> None:
    values = extract(
        golden,
        {
            "id": "tokens",
            "name": "T",
            "type": "number",
            "extract": {"method": "stats", "stat": "token_total"},
        },
        {
            "id": "cost",
            "name": "C",
            "type": "number",
            "extract": {"method": "stats", "stat": "cost"},
        },
        {
            "id": "reason",
            "name": "R",
            "type": "category",
            "extract": {"method": "stats", "stat": "termination_reason"},
        },
    )
    assert values["tokens"].to_json() == {
        "value": 1500,
        "evidence": [{"event": None, "snippet": "token_total = 1500"}],
    }
    # No price table was given, so the cost is missing and the evidence says why.
    assert values["cost"].value is None
    assert values["cost"].evidence[0].snippet == "cost: not recorded and not derivable"
    assert values["reason"].value == "max_steps"


LLM = {
    "id": "gave-up",
    "name": "Gave up",
    "type": "boolean",
    "source": "finalAnswer",
    "extract": {"method": "llm", "prompt": "Did the agent give up?"},
}
LLM_MESSAGES = {
    "id": "tone",
    "name": "Tone",
    "type": "category",
    "category_enums": ["calm", "frustrated"],
    "scope": "message",
    "target_role": "user",
    "fold": {"fn": "histogram"},
    "extract": {"method": "llm", "prompt": "Tone?", "model": "gpt-4.1-mini"},
}


def test_llm_signals_without_a_judge_are_missing_with_a_reason(golden: Transcript) -> None:
    value = extract(golden, LLM)["gave-up"]
    assert value.to_json() == {"value": None, "evidence": [], "error": NO_JUDGE}


def test_llm_signals_ask_one_question_per_run_or_message(golden: Transcript) -> None:
    extractor = Extractor(config(LLM, LLM_MESSAGES))
    requests = extractor.judge_requests(golden)
    assert [(r.signal_id, r.event, r.model, r.text) for r in requests] == [
        ("gave-up", None, "claude-haiku-4-5", "Created customer cus_1."),
        ("tone", 1, "gpt-4.1-mini", "Install the SDK and create a customer."),
        ("tone", 6, "gpt-4.1-mini", "Any luck?"),
    ]
    assert requests[1].categories == ("calm", "frustrated")
    assert requests[1].cache_key != requests[2].cache_key


def test_llm_verdicts_become_values_with_the_cited_excerpt(golden: Transcript) -> None:
    verdicts = {
        ("gave-up", None): JudgeVerdict(False, "Created customer cus_1."),
        ("tone", 1): JudgeVerdict("calm", "Install the SDK"),
        ("tone", 6): JudgeVerdict("frustrated", "Any luck?"),
    }
    values = extract(golden, LLM, LLM_MESSAGES, verdicts=verdicts)
    # The final answer is message 7's text: the evidence points there.
    assert values["gave-up"].to_json() == {
        "value": False,
        "evidence": [{"event": 7, "snippet": "Created customer cus_1."}],
    }
    assert values["tone"].value == {"calm": 1, "frustrated": 1}
    assert [e.event for e in values["tone"].evidence] == [1, 6]


@pytest.mark.parametrize(
    ("verdict", "error"),
    [
        (JudgeVerdict("maybe"), "judge answered 'maybe', not true or false"),
        (
            JudgeVerdict(None, error="HTTP 529 overloaded"),
            "judge claude-haiku-4-5 failed: HTTP 529 overloaded",
        ),
    ],
)
def test_bad_or_failed_verdicts_are_per_run_errors(
    golden: Transcript, verdict: JudgeVerdict, error: str
) -> None:
    value = extract(golden, LLM, verdicts={("gave-up", None): verdict})["gave-up"]
    assert (value.value, value.error) == (None, error)


def test_unsupported_judge_model_fails_at_extraction_with_a_clear_error(golden: Transcript) -> None:
    signal = {**LLM, "extract": {**LLM["extract"], "model": "gpt-5-ultra"}}
    extractor = Extractor(config(signal))
    assert extractor.judge_requests(golden) == []
    value = extractor.extract(golden, derive_stats(golden))["gave-up"]
    assert value.value is None
    assert value.error is not None
    assert value.error.startswith("unsupported judge model 'gpt-5-ultra' (supported: ")


def test_one_signals_failure_leaves_the_others(golden: Transcript) -> None:
    verdicts = {("gave-up", None): JudgeVerdict("maybe")}
    values = extract(
        golden,
        LLM,
        {
            "id": "steps",
            "name": "Steps",
            "type": "number",
            "extract": {"method": "stats", "stat": "steps"},
        },
        verdicts=verdicts,
    )
    assert values["gave-up"].error is not None
    assert values["steps"].value == 4
