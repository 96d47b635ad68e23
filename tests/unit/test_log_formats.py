"""Recorded agent logs read as tpc transcripts: the fixture corpus (tests/fixtures/formats/, one
real-shaped log per format, see its README) read with the counts a person checked by hand,
every file refused by every other format with a located message, and `auto` detection."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from domain.stats import derive_stats
from domain.transcript_formats import TranscriptFormatError, parse_output
from domain.transcript_formats.files import (
    FILE_READERS,
    LoggedTranscript,
    detect_format,
    read_logs,
)
from domain.transcripts import ToolCallBlock, ToolResultBlock, Transcript
from infra.llm.prices import MODEL_PRICES
from tests.conftest import FIXTURES

CORPUS = FIXTURES / "formats"
ROLLOUT = "rollout-2025-10-29T00-59-38-0199a2d7-41c4-78b1-b7cc-a45d62a89cd5.jsonl"
FORMAT_OF = {
    "tpc.json": "tpc",
    "openai_messages.json": "openai-messages",
    "anthropic_messages.json": "anthropic-messages",
    "openai_responses.json": "openai-responses",
    "mini_swe_agent.traj.json": "mini-swe-agent",
    "claude_stream_json.jsonl": "claude-stream-json",
    "claude_stream_json_replayed.jsonl": "claude-stream-json",
    "claude_code_session.jsonl": "claude-code-session",
    "codex_exec.jsonl": "codex-jsonl",
    "codex_exec_0.39.jsonl": "codex-jsonl",
    ROLLOUT: "codex-session",
    "inspect_log.json": "inspect-log",
    "inspect_log.eval": "inspect-log",
}
SONNET_IN, SONNET_OUT = 3.0 / 1e6, 15.0 / 1e6
MINI_IN, MINI_OUT = 0.15 / 1e6, 0.60 / 1e6
# file -> sample -> (assistant messages, tool calls, tool results, user turns, token_in,
# token_out, cost), counted by hand from the files.
COUNTS: dict[str, dict[str | None, tuple[Any, ...]]] = {
    "tpc.json": {None: (2, 1, 1, 0, 800, 120, 0.002)},
    "openai_messages.json": {None: (2, 2, 2, 1, 1830, 214, 1830 * 0.4e-6 + 214 * 1.6e-6)},
    "anthropic_messages.json": {
        # Usage recorded on each of the three API responses; cache reads count as input.
        None: (
            3,
            2,
            2,
            1,
            1502 + (1630 + 1200) + 1712,
            74 + 61 + 19,
            (1502 + 2830 + 1712) * SONNET_IN + 154 * SONNET_OUT,
        )
    },
    "openai_responses.json": {None: (2, 2, 2, 1, 412, 58, 412 * 2.0e-6 + 58 * 8.0e-6)},
    "mini_swe_agent.traj.json": {None: (3, 3, 3, 1, None, None, 0.0213)},
    "claude_stream_json.jsonl": {None: (3, 2, 2, 0, 49830, 282, 0.0412635)},
    "claude_stream_json_replayed.jsonl": {None: (3, 2, 2, 1, 49830, 282, 0.0412635)},
    "claude_code_session.jsonl": {
        # 4 main messages + 2 of the sub-agent; its prompt is not a user turn.
        None: (
            6,
            3,
            3,
            2,
            13214 + 900 + 960 + 13336 + 13398 + 13465,
            88 + 40 + 14 + 21 + 35 + 17,
            55273 * SONNET_IN + 215 * SONNET_OUT,
        )
    },
    "codex_exec.jsonl": {None: (4, 5, 3, 0, 24763, 122, None)},
    "codex_exec_0.39.jsonl": {None: (4, 3, 3, 1, 18230, 412, None)},
    ROLLOUT: {None: (3, 2, 2, 1, 18950, 188, None)},
    **{
        name: {
            sample: (2, 1, 1, 1, 1200 + 256, 85, 1456 * MINI_IN + 85 * MINI_OUT)
            for sample in ("install_epoch_1", "install_epoch_2", "lint_epoch_1")
        }
        for name in ("inspect_log.json", "inspect_log.eval")
    },
}


def read(name: str, fmt: str = "auto") -> list[LoggedTranscript]:
    return read_logs(name, (CORPUS / name).read_bytes(), fmt)


def one(name: str, fmt: str = "auto") -> Transcript:
    (logged,) = read(name, fmt)
    return logged.parsed.transcript


def test_the_corpus_is_what_the_tests_cover() -> None:
    files = {path.name for path in CORPUS.iterdir()} - {"README.md"}
    assert files == set(FORMAT_OF) == set(COUNTS)
    assert set(FORMAT_OF.values()) == set(FILE_READERS)
    readme = (CORPUS / "README.md").read_text()
    for name in FORMAT_OF:
        assert f"`{name}`" in readme


@pytest.mark.parametrize("name", sorted(FORMAT_OF))
def test_each_log_is_read_with_its_counts_tokens_and_cost(name: str) -> None:
    logged = read(name, FORMAT_OF[name])
    assert {item.sample: item.format for item in logged} == dict.fromkeys(
        COUNTS[name], FORMAT_OF[name]
    )
    for item in logged:
        transcript = item.parsed.transcript
        stats = derive_stats(transcript, MODEL_PRICES)
        blocks = [block for message in transcript.messages for block in message.content]
        results = sum(isinstance(block, ToolResultBlock) for block in blocks)
        assert stats.tool_calls == sum(isinstance(block, ToolCallBlock) for block in blocks)
        steps, calls, tool_results, turns, token_in, token_out, cost = COUNTS[name][item.sample]
        assert (stats.steps, stats.tool_calls, results, stats.turns) == (
            steps,
            calls,
            tool_results,
            turns,
        )
        assert (stats.token_in, stats.token_out) == (token_in, token_out)
        assert stats.cost == (pytest.approx(cost) if cost is not None else None)
        # What is read is a valid tpc transcript, and stays one through JSON.
        again = Transcript.model_validate_json(transcript.model_dump_json())
        assert again == transcript
        json.dumps(item.metadata)


@pytest.mark.parametrize("name", sorted(FORMAT_OF))
def test_auto_detects_each_format(name: str) -> None:
    assert detect_format(name, (CORPUS / name).read_bytes()) == FORMAT_OF[name]
    assert {item.format for item in read(name)} == {FORMAT_OF[name]}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [(name, fmt) for name in sorted(FORMAT_OF) for fmt in FILE_READERS if fmt != FORMAT_OF[name]],
)
def test_every_format_refuses_every_other_formats_file(name: str, fmt: str) -> None:
    with pytest.raises(TranscriptFormatError) as refused:
        read(name, fmt)
    message = str(refused.value)
    assert message.startswith(name)
    assert fmt in message or "tpc transcript" in message
    # ... and says which format the file seems to be in.
    assert f"try --from {FORMAT_OF[name]}" in message or "tpc transcript" in message


def test_a_file_of_no_known_format_is_refused_naming_it() -> None:
    with pytest.raises(TranscriptFormatError, match=r"^notes\.json: cannot tell the format"):
        detect_format("notes.json", b'{"title": "meeting notes", "items": [1, 2]}')
    with pytest.raises(TranscriptFormatError, match=r"^empty\.jsonl: .*empty"):
        read_logs("empty.jsonl", b"\n")
    with pytest.raises(TranscriptFormatError, match="unknown format 'yaml'"):
        read_logs("x.json", b"{}", "yaml")


# -- the defects real logs showed ------------------------------------------------------------


def test_codex_jsonl_refuses_a_claude_stream_and_a_codex_session_at_their_first_line() -> None:
    claude = (CORPUS / "claude_stream_json.jsonl").read_text()
    with pytest.raises(TranscriptFormatError, match=r"codex-jsonl line 1: `type` 'system' is not"):
        parse_output("codex-jsonl", claude)
    session = (CORPUS / ROLLOUT).read_text()
    with pytest.raises(TranscriptFormatError, match=r"line 1: `type` 'session_meta' is not"):
        parse_output("codex-jsonl", session)


def test_claude_stream_json_does_not_add_the_prompt_the_stream_echoes() -> None:
    prompt = "Create a customer named Ada with the Acme SDK."
    text = (CORPUS / "claude_stream_json_replayed.jsonl").read_text()
    transcript = parse_output("claude-stream-json", text, prompt).transcript
    users = [m for m in transcript.messages if m.role == "user"]
    assert [m.content[0].model_dump()["text"] for m in users] == [prompt]
    assert derive_stats(transcript).turns == 1
    # Without the echo, the prompt is still added once.
    plain = (CORPUS / "claude_stream_json.jsonl").read_text()
    assert derive_stats(parse_output("claude-stream-json", plain, prompt).transcript).turns == 1


def test_codex_exec_json_before_0_44_reads_its_events() -> None:
    transcript = one("codex_exec_0.39.jsonl")
    assert transcript.stats.model == "gpt-5-codex"
    assert transcript.termination_reason == "completed"
    calls = [b for m in transcript.messages for b in m.content if isinstance(b, ToolCallBlock)]
    assert [(c.name, c.input) for c in calls] == [
        ("shell", {"command": "bash -lc 'ls tests'"}),
        (
            "apply_patch",
            {"changes": [{"path": "/home/dev/acme/tests/test_parser.py", "kind": "add"}]},
        ),
        ("shell", {"command": "bash -lc 'pytest -q tests/test_parser.py'"}),
    ]
    results = [b for m in transcript.messages for b in m.content if isinstance(b, ToolResultBlock)]
    assert [r.is_error for r in results] == [False, False, True]
    assert results[2].content.endswith("[exit code 1]")
    # The echoed prompt is the user message; no other prompt is added.
    with_prompt = parse_output(
        "codex-jsonl", (CORPUS / "codex_exec_0.39.jsonl").read_text(), "another prompt"
    ).transcript
    assert [m.role for m in with_prompt.messages].count("user") == 1


def test_anthropic_messages_keep_each_messages_model_and_usage() -> None:
    transcript = one("anthropic_messages.json")
    assert transcript.stats.model == "claude-sonnet-4-5-20250929"
    assert transcript.stats.model_dump()["cache_read_tokens"] == 1200
    # A top-level usage, when given, is the run's own count and wins.
    document = {
        "usage": {"input_tokens": 10, "output_tokens": 2},
        "messages": json.loads((CORPUS / "anthropic_messages.json").read_text()),
    }
    (logged,) = read_logs("x.json", json.dumps(document).encode(), "anthropic-messages")
    assert (logged.parsed.transcript.stats.token_in, logged.parsed.transcript.stats.token_out) == (
        10,
        2,
    )


# -- each new format's mapping ---------------------------------------------------------------


def test_claude_code_session_skips_bookkeeping_and_nests_the_sidechain() -> None:
    transcript = one("claude_code_session.jsonl")
    texts = [
        block.model_dump().get("text", "")
        for message in transcript.messages
        for block in message.content
    ]
    assert not any("Caveat" in t or "<command-name>" in t or "local-command" in t for t in texts)
    assert [m.role for m in transcript.messages] == [
        "user",
        "assistant",  # text + Task call: one message over two lines
        "assistant",  # the sub-agent's work, in order
        "tool",
        "assistant",
        "tool",  # the Task call's result
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    first = transcript.messages[1].content
    assert [b.type for b in first] == ["text", "tool_call"]
    (logged,) = read("claude_code_session.jsonl")
    assert logged.metadata == {
        "session_id": "8c3e1f52-4b7a-4d2e-9f60-1a2b3c4d5e6f",
        "version": "2.0.14",
        "cwd": "/home/dev/acme",
        "sidechain_messages": 3,
        "model": "claude-sonnet-4-5-20250929",
    }
    assert derive_stats(transcript).duration == 63.0


def test_a_sub_agents_own_session_file_keeps_its_prompt() -> None:
    lines = [
        json.loads(line)
        for line in (CORPUS / "claude_code_session.jsonl").read_text().splitlines()
        if json.loads(line).get("isSidechain")
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    (logged,) = read_logs("agent-1a2b.jsonl", data)
    assert [m.role for m in logged.parsed.transcript.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


def test_codex_session_reads_items_tokens_and_injected_context() -> None:
    (logged,) = read(ROLLOUT)
    transcript = logged.parsed.transcript
    assert [m.role for m in transcript.messages] == [
        "system",  # <environment_context>, injected by Codex
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    results = [b for m in transcript.messages for b in m.content if isinstance(b, ToolResultBlock)]
    assert [(r.tool_call_id, r.is_error) for r in results] == [
        ("call_mT1", True),
        ("call_mT2", True),
    ]
    assert "ImportError" in results[0].content
    assert transcript.stats.model == "gpt-5-codex"
    assert transcript.stats.model_dump()["cached_input_tokens"] == 16128
    assert transcript.final_answer is not None and "does not export" in transcript.final_answer
    assert logged.metadata["cli_version"] == "0.46.0"
    assert logged.metadata["id"] == "0199a2d7-41c4-78b1-b7cc-a45d62a89cd5"


def test_inspect_eval_and_json_logs_give_every_sample_with_its_scores() -> None:
    from_zip, from_json = read("inspect_log.eval"), read("inspect_log.json")
    assert [(a.sample, a.parsed, a.metadata) for a in from_zip] == [
        (b.sample, b.parsed, b.metadata) for b in from_json
    ]
    install, retry, lint = from_json
    assert install.metadata["scores"] == {
        "includes": {
            "value": "C",
            "answer": "acme 2.1.0 is installed.",
            "explanation": "'2.1.0' found",
        }
    }
    assert (install.metadata["sample_id"], install.metadata["epoch"]) == ("install", 1)
    assert install.metadata["task"] == "acme_cli"
    assert install.metadata["model"] == "openai/gpt-4o-mini"
    assert retry.metadata["scores"]["includes"]["value"] == "I"
    failed = [b for m in retry.parsed.transcript.messages for b in m.content]
    assert any(
        isinstance(b, ToolResultBlock) and b.is_error and "timed out" in b.content for b in failed
    )
    assert (lint.parsed.error, lint.parsed.transcript.termination_reason) == (
        "RuntimeError('sandbox exited')",
        "error",
    )
    thinking = install.parsed.transcript.messages[2].content[0]
    assert thinking.model_dump() == {"type": "thinking", "thinking": "I should check pip first."}


def test_a_zip_that_is_not_an_inspect_log_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", "a,b\n")
    with pytest.raises(TranscriptFormatError, match=r"^other\.zip: inspect-log: .*header\.json"):
        read_logs("other.zip", buffer.getvalue())


def test_mini_swe_agent_actions_become_bash_calls_with_their_observations() -> None:
    transcript = one("mini_swe_agent.traj.json")
    calls = [b for m in transcript.messages for b in m.content if isinstance(b, ToolCallBlock)]
    assert calls[0].model_dump() == {
        "type": "tool_call",
        "id": "action_2",
        "name": "bash",
        "input": {"command": 'grep -rn "def slug" acme'},
    }
    results = [b for m in transcript.messages for b in m.content if isinstance(b, ToolResultBlock)]
    assert [r.tool_call_id for r in results] == ["action_2", "action_4", "action_6"]
    assert transcript.termination_reason == "completed"
    assert transcript.final_answer is not None and transcript.final_answer.startswith("diff --git")
    assert transcript.stats.model == "claude-sonnet-4-5-20250929"


def test_openai_responses_items_pair_calls_and_outputs() -> None:
    transcript = one("openai_responses.json")
    assert [m.role for m in transcript.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    call = transcript.messages[2].content[0]
    assert call.model_dump() == {
        "type": "tool_call",
        "id": "call_w1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    # A bare list of items is read too.
    items = json.loads((CORPUS / "openai_responses.json").read_text())["output"]
    (logged,) = read_logs("items.json", json.dumps(items).encode())
    assert logged.format == "openai-responses"
    assert len(logged.parsed.transcript.messages) == 4


def test_a_tpc_array_gives_one_sample_per_transcript(tmp_path: Path) -> None:
    document = json.loads((CORPUS / "tpc.json").read_text())
    logged = read_logs("two.json", json.dumps([document, document]).encode())
    assert [(item.sample, item.format) for item in logged] == [("0", "tpc"), ("1", "tpc")]


@pytest.mark.parametrize(
    ("document", "fmt"),
    [
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ]
            },
            "openai-messages",
        ),
        (
            {"system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]},
            "anthropic-messages",
        ),
        (
            {
                "model": "gpt-4.1",
                "input": [{"role": "user", "content": "hi"}],
                "output": [
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "hello"}],
                    }
                ],
            },
            "openai-responses",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}],
                }
            ],
            "anthropic-messages",
        ),
    ],
)
def test_auto_detects_the_wrapper_shapes(document: Any, fmt: str) -> None:
    (logged,) = read_logs("wrapped.json", json.dumps(document).encode())
    assert logged.format == fmt
    assert logged.parsed.transcript.messages


def test_codex_session_files_from_before_the_payload_wrapper_are_read() -> None:
    lines = [
        {
            "id": "5973b6c0-94b8-487b-a530-2aeb6098ae0e",
            "timestamp": "2025-05-12T10:00:00.000Z",
            "instructions": None,
        },
        {"record_type": "state"},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "List the files."}],
        },
        {
            "type": "function_call",
            "name": "shell",
            "arguments": '{"command": ["ls"]}',
            "call_id": "call_1",
        },
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": '{"output": "README.md\\n", "metadata": {"exit_code": 0}}',
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "One file: README.md."}],
        },
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    (logged,) = read_logs("rollout-2025-05-12.jsonl", data, "codex-session")
    assert [m.role for m in logged.parsed.transcript.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert logged.metadata == {"id": "5973b6c0-94b8-487b-a530-2aeb6098ae0e"}


def test_inspect_attachments_are_resolved_to_their_text() -> None:
    log = json.loads((CORPUS / "inspect_log.json").read_text())
    sample = log["samples"][0]
    sample["attachments"] = {"0f3a9c": "acme 2.1.0\n" + "log line\n" * 3}
    sample["messages"][3]["content"] = "attachment://0f3a9c"
    log["samples"] = [sample]
    (logged,) = read_logs("attached.json", json.dumps(log).encode())
    result = logged.parsed.transcript.messages[3].content[0]
    assert isinstance(result, ToolResultBlock)
    assert result.content.startswith("acme 2.1.0\nlog line")


def test_claude_codes_own_assistant_messages_are_notes_not_steps() -> None:
    lines = (CORPUS / "claude_code_session.jsonl").read_text().splitlines()
    error = json.loads(lines[-1])
    error["uuid"], error["isApiErrorMessage"] = "u-10", True
    error["message"] = {
        "id": "1b2c",
        "model": "<synthetic>",
        "role": "assistant",
        "type": "message",
        "content": [{"type": "text", "text": "API Error: 529 Overloaded"}],
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    data = "\n".join([*lines, json.dumps(error)]).encode()
    (logged,) = read_logs("session.jsonl", data)
    transcript = logged.parsed.transcript
    last = transcript.messages[-1]
    assert last.role == "system"
    assert last.content[0].model_dump()["text"] == "[Claude Code] API Error: 529 Overloaded"
    assert derive_stats(transcript).steps == 6
