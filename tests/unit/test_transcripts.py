"""Parsing tpc transcript v1 (docs/spec.md §3) and deriving stats (docs/spec.md §3.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.stats import ModelPrice, derive_stats
from domain.transcripts import (
    InvalidTranscript,
    TextBlock,
    ToolResultBlock,
    Transcript,
    parse_transcript,
)


def test_string_content_is_one_text_block() -> None:
    transcript = parse_transcript(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    assert transcript.messages[0].content == [TextBlock(text="hi")]


def test_only_messages_is_required() -> None:
    transcript = parse_transcript('{"messages": []}')
    assert transcript.task_id is None
    assert transcript.stats.token_in is None


def test_unknown_keys_are_ignored_for_other_tools_exports() -> None:
    transcript = parse_transcript(
        '{"messages": [{"role": "user", "content": "x", "id": "m1"}], "exporter": "other"}'
    )
    assert transcript.messages[0].content == [TextBlock(text="x")]


def test_tool_result_content_given_as_text_blocks_is_joined(golden: Transcript) -> None:
    block = golden.messages[5].content[0]
    assert isinstance(block, ToolResultBlock)
    assert block.content == "wrote\na.py"
    assert block.is_error is True


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be an object (got [])"),
        ("{}", "messages: required"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "messages[0].role: must be 'system'"),
        (
            '{"messages": [{"role": "user", "content": [{"type": "image"}]}]}',
            "messages[0].content[0]: unknown type 'image'",
        ),
        (
            '{"messages": [{"role": "user", "content": [{"text": "no type"}]}]}',
            "messages[0].content[0]: required: a block needs a 'type'",
        ),
        (
            '{"messages": [{"role": "assistant", "content": [{"type": "tool_call"}]}]}',
            "messages[0].content[0].name: required",
        ),
        ('{"messages": [], "status": "ok"}', "status: must be 'passed'"),
        ('{"messages": [], "version": 2}', "version: must be 1"),
        (
            '{"messages": [], "stats": {"token_in": "many"}}',
            "stats.token_in: must be a valid integer",
        ),
    ],
)
def test_malformed_transcripts_name_the_message_and_field(document: str, expected: str) -> None:
    with pytest.raises(InvalidTranscript) as raised:
        parse_transcript(document, "run.json")
    assert str(raised.value).startswith("run.json: not a valid tpc transcript: ")
    assert expected in str(raised.value)


def test_every_problem_is_reported_at_once() -> None:
    document = json.dumps(
        {"status": "ok", "messages": [{"role": "bot", "content": "x"}, {"content": "y"}]}
    )
    with pytest.raises(InvalidTranscript) as raised:
        parse_transcript(document)
    assert [loc for loc, _ in raised.value.problems] == [
        "status",
        "messages[0].role",
        "messages[1].role",
    ]


def test_stats_are_counted_and_derived(golden: Transcript) -> None:
    stats = derive_stats(golden, {"claude-sonnet-4-5": ModelPrice(3.0, 15.0)})
    assert stats.duration == 12.5
    assert (stats.token_in, stats.token_out, stats.token_total) == (1200, 300, 1500)
    assert stats.cost == pytest.approx((1200 * 3 + 300 * 15) / 1e6)
    assert (stats.tool_calls, stats.steps, stats.turns) == (3, 4, 2)
    assert (stats.status, stats.termination_reason) == ("failed", "max_steps")


def test_a_dated_model_snapshot_is_priced_as_its_model(golden: Transcript) -> None:
    prices = {"claude-sonnet-4-5": ModelPrice(3.0, 15.0), "gpt-4o-mini": ModelPrice(0.15, 0.6)}
    for model in ("claude-sonnet-4-5-20250929", "gpt-4o-mini-2024-07-18"):
        price = prices[model.rsplit("-", 1 if model.startswith("claude") else 3)[0]]
        dated = golden.model_copy(
            update={"stats": golden.stats.model_copy(update={"model": model})}
        )
        assert derive_stats(dated, prices).cost == pytest.approx(price.cost(1200, 300))
    unknown = golden.model_copy(
        update={"stats": golden.stats.model_copy(update={"model": "claude-unknown-20250929"})}
    )
    assert derive_stats(unknown, prices).cost is None


def test_recorded_stats_win_over_derived_ones(golden: Transcript) -> None:
    recorded = golden.model_copy(
        update={"stats": golden.stats.model_copy(update={"duration": 3.0, "cost": 0.5})}
    )
    stats = derive_stats(recorded, {"claude-sonnet-4-5": ModelPrice(3.0, 15.0)})
    assert (stats.duration, stats.cost) == (3.0, 0.5)


def test_stats_that_cannot_be_derived_are_null() -> None:
    transcript = parse_transcript(
        '{"messages": [], "stats": {"token_in": 5, "model": "unpriced-model"},'
        ' "started_at": "2026-11-21T10:00:00Z"}'
    )
    stats = derive_stats(transcript)
    assert stats.duration is None
    assert stats.token_total is None
    assert stats.cost is None
    assert stats.status is None


def test_timestamps_without_offset_are_taken_as_utc() -> None:
    transcript = parse_transcript(
        '{"messages": [], "started_at": "2026-11-21T10:00:00",'
        ' "ended_at": "2026-11-21T10:00:02+00:00"}'
    )
    assert derive_stats(transcript).duration == 2.0


# Odd but JSON-expressible values for every field, to hold the two ways of parsing together.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["", "1", "1.5", "true", "yes", "passed", "completed", "2026-11-21T10:00:00Z"]),
    st.sampled_from(["1700000000", "text", "tool_call", "assistant", "\u00e9"]),
    st.lists(st.sampled_from([1, "a", {"text": "b"}, {"type": "text", "text": "c"}]), max_size=2),
    st.just({"type": "text", "text": "x"}),
)
FIELDS = ["version", "task_id", "status", "termination_reason", "started_at", "final_answer"]
ROLES = ["user", "assistant", "tool", "system"]
BLOCK_TYPES = ["text", "thinking", "tool_call", "tool_result"]
BLOCK_FIELDS = ["text", "thinking", "name", "input", "content", "is_error", "id", "tool_call_id"]
BLOCK = st.fixed_dictionaries(
    {"type": st.sampled_from(BLOCK_TYPES) | st.sampled_from(BLOCK_TYPES) | ODD},
    optional={field: st.text(max_size=3) | ODD for field in BLOCK_FIELDS},
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES) | st.sampled_from(ROLES) | ODD},
    optional={"content": st.text(max_size=3) | st.lists(BLOCK, max_size=3) | ODD},
)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(st.sampled_from(FIELDS), ODD, max_size=1),
    st.dictionaries(
        st.sampled_from(["duration", "token_in", "cost", "model", "x"]), ODD, max_size=2
    ),
    st.lists(MESSAGE, max_size=2),
)
def test_parsing_accepts_and_rejects_what_json_validation_does(
    fields: dict[str, Any], stats: dict[str, Any], messages: list[dict[str, Any]]
) -> None:
    # `parse_transcript` decodes the JSON first and validates the objects (cheaper); pydantic's
    # JSON mode is the definition of what a transcript is, and words every error.
    document = json.dumps({**fields, "stats": stats, "messages": messages})
    try:
        expected: Transcript | None = Transcript.model_validate_json(document)
    except ValidationError:
        expected = None
    try:
        got: Transcript | None = parse_transcript(document)
    except InvalidTranscript:
        got = None
    assert got == expected
    if got is not None:
        assert got.model_dump() == expected.model_dump()  # type: ignore[union-attr]


def test_actions_pair_each_tool_call_with_its_result_in_call_order() -> None:
    transcript = Transcript.model_validate(
        {
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_call", "id": "a", "name": "ls", "input": {"path": "."}},
                        {"type": "tool_call", "id": "b", "name": "cat", "input": {"f": "x"}},
                    ],
                },
                {
                    "role": "tool",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_call_id": "b",
                            "content": "no such file",
                            "is_error": True,
                        },
                        {"type": "tool_result", "tool_call_id": "a", "content": "x"},
                    ],
                },
                {"role": "assistant", "content": [{"type": "tool_call", "id": "c", "name": "rm"}]},
            ]
        }
    )
    assert [action.model_dump() for action in transcript.actions()] == [
        {"event": 1, "name": "ls", "input": {"path": "."}, "result": "x", "is_error": False},
        {
            "event": 1,
            "name": "cat",
            "input": {"f": "x"},
            "result": "no such file",
            "is_error": True,
        },
        {"event": 3, "name": "rm", "input": {}, "result": None, "is_error": False},
    ]
