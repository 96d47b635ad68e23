"""Agent transcript formats: realistic outputs of each agent -> tpc transcripts, and located
errors for malformed ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain.stats import derive_stats
from domain.transcript_formats import (
    FORMATS,
    TranscriptFormatError,
    parse_output,
    parser_for,
)
from domain.transcripts import Transcript
from tests.conftest import FIXTURES

OUTPUTS = FIXTURES / "agent_output"
PROMPT = "Create a customer named Ada with the Acme SDK."


def read(name: str) -> str:
    return (OUTPUTS / name).read_text()


def shape(transcript: Transcript) -> list[tuple[str, list[Any]]]:
    """Each message as (role, [block type and its main field]) for compact golden checks."""
    out: list[tuple[str, list[Any]]] = []
    for message in transcript.messages:
        blocks: list[Any] = []
        for block in message.content:
            data = block.model_dump()
            if data["type"] == "text":
                blocks.append(("text", data["text"]))
            elif data["type"] == "thinking":
                blocks.append(("thinking", data["thinking"]))
            elif data["type"] == "tool_call":
                blocks.append(("tool_call", data["id"], data["name"], data["input"]))
            else:
                result = ("tool_result", data["tool_call_id"], data["content"], data["is_error"])
                blocks.append(result)
        out.append((message.role, blocks))
    return out


def error_of(fmt: str, text: str) -> TranscriptFormatError:
    with pytest.raises(TranscriptFormatError) as caught:
        parse_output(fmt, text, PROMPT)
    return caught.value


# -- claude-stream-json ---------------------------------------------------------------------


def test_claude_stream_json_merges_the_lines_of_one_message_and_reads_the_result() -> None:
    parsed = parse_output("claude-stream-json", read("claude_stream_json.jsonl"), PROMPT)
    transcript = parsed.transcript
    assert parsed.error is None
    assert transcript.termination_reason == "completed"
    script = (
        'import acme\n\nclient = acme.Client()\nprint(client.customers.create(name="Ada").id)\n'
    )
    answer = "I wrote `create_customer.py`. Install the SDK with `pip install acme-sdk` and run it."
    assert shape(transcript) == [
        ("user", [("text", PROMPT)]),
        (
            "assistant",
            [
                (
                    "thinking",
                    "The user wants a script that creates a customer. I should look at the SDK "
                    "first.",
                ),
                ("text", "I'll check what is installed first."),
                (
                    "tool_call",
                    "toolu_01A9xYz",
                    "Bash",
                    {
                        "command": "pip show acme-sdk",
                        "description": "Check whether the SDK is installed",
                    },
                ),
            ],
        ),
        (
            "tool",
            [("tool_result", "toolu_01A9xYz", "WARNING: Package(s) not found: acme-sdk", True)],
        ),
        (
            "assistant",
            [
                (
                    "tool_call",
                    "toolu_01B7cDe",
                    "Write",
                    {"file_path": "/tmp/tpc-run_7k2m-abcd/create_customer.py", "content": script},
                )
            ],
        ),
        (
            "tool",
            [
                (
                    "tool_result",
                    "toolu_01B7cDe",
                    "File created successfully at: /tmp/tpc-run_7k2m-abcd/create_customer.py",
                    False,
                )
            ],
        ),
        ("assistant", [("text", answer)]),
    ]
    assert transcript.final_answer == answer
    assert transcript.stats.model_dump(exclude_none=True) == {
        "duration": 18.342,
        "cost": 0.0412635,
        "token_in": 16 + 5634 + 44180,  # uncached + cache writes + cache reads
        "token_out": 282,
        "model": "claude-sonnet-4-5-20250929",
        "cache_read_tokens": 44180,
        "cache_creation_tokens": 5634,
        "agent_turns": 3,
    }
    stats = derive_stats(transcript)
    assert (stats.steps, stats.tool_calls, stats.turns) == (3, 2, 1)


def test_claude_stream_json_reports_each_message_once_it_is_complete() -> None:
    parser = parser_for("claude-stream-json", PROMPT)
    emitted = [
        [message.role for message in parser.feed(line)]
        for line in read("claude_stream_json.jsonl").splitlines()
    ]
    # The prompt is added with the first message line (line 2: the stream could have echoed it
    # there); the first assistant message spans lines 2-4: it is complete when line 5 arrives.
    assert emitted == [
        [],
        ["user"],
        [],
        [],
        ["assistant", "tool"],
        [],
        ["assistant", "tool"],
        [],
        ["assistant"],
    ]
    assert len(parser.finish().transcript.messages) == 6


def test_claude_max_turns_is_max_steps_and_not_an_agent_error() -> None:
    parsed = parse_output("claude-stream-json", read("claude_stream_json_max_turns.jsonl"), PROMPT)
    assert parsed.error is None
    assert parsed.transcript.termination_reason == "max_steps"
    assert parsed.transcript.final_answer is None
    assert parsed.transcript.stats.cost == 0.0031
    assert [m.role for m in parsed.transcript.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]


def test_a_claude_error_result_is_an_agent_error() -> None:
    lines: list[dict[str, Any]] = [
        {"type": "system", "subtype": "init", "model": "claude-sonnet-4-5"},
        {
            "type": "result",
            "subtype": "success",
            "is_error": True,
            "duration_ms": 310,
            "num_turns": 1,
            "result": "Invalid API key · Please run /login",
            "total_cost_usd": 0,
        },
    ]
    parsed = parse_output("claude-stream-json", "\n".join(map(json.dumps, lines)), PROMPT)
    assert parsed.error == "Invalid API key · Please run /login"
    assert parsed.transcript.termination_reason == "error"
    during = {**lines[1], "subtype": "error_during_execution", "result": None, "errors": ["boom"]}
    parsed = parse_output("claude-stream-json", json.dumps(during), PROMPT)
    assert (parsed.error, parsed.transcript.termination_reason) == ("boom", "error")


def test_claude_output_cut_off_before_its_result_sums_usage_per_message() -> None:
    text = "\n".join(read("claude_stream_json.jsonl").splitlines()[:-1])
    parsed = parse_output("claude-stream-json", text, PROMPT)
    assert parsed.transcript.termination_reason is None
    assert parsed.transcript.final_answer is None
    # Three messages; the one spread over three lines counts once.
    assert parsed.transcript.stats.token_in == (4 + 5123 + 11208) + (6 + 310 + 16331) + (
        6 + 201 + 16641
    )
    assert parsed.transcript.stats.token_out == 96 + 152 + 31


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no assistant message and no `result` line"),
        ('{"type":"system","subtype":"init"}\n{"type": "assistant", "message": ', "line 2"),
        ('{"type":"system"}\n\n["not", "an object"]', "line 3: expected an object, got an array"),
        (
            '{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use","id":"t",'
            '"name":5,"input":{}}]}}',
            "line 1: `message.content[0].name` expected a string, got a number",
        ),
        ('{"type":"result","duration_ms":"soon"}', "line 1: `duration_ms` expected a number"),
        ('{"subtype":"init"}', "line 1: `type` expected a string, got null"),
    ],
)
def test_malformed_claude_output_names_the_line_and_field(text: str, expected: str) -> None:
    error = error_of("claude-stream-json", text)
    assert expected in str(error)
    assert str(error).startswith("claude-stream-json")


# -- codex-jsonl ----------------------------------------------------------------------------


def test_codex_jsonl_items_become_steps_tool_calls_and_results() -> None:
    parsed = parse_output("codex-jsonl", read("codex.jsonl"), PROMPT)
    transcript = parsed.transcript
    plan_1 = [
        {"text": "Install the SDK", "completed": False},
        {"text": "Write the script", "completed": False},
    ]
    plan_2 = [{**plan_1[0], "completed": True}, plan_1[1]]
    answer = "I added create_customer.py; the SDK could not be installed from PyPI."
    ls_output = "total 8\ndrwx------ 2 dev dev 4096 .\n-rw-r--r-- 1 dev dev   42 README.md\n"
    assert shape(transcript) == [
        ("user", [("text", PROMPT)]),
        (
            "assistant",
            [
                ("thinking", "**Looking for the SDK's install instructions**"),
                ("tool_call", "item_1", "shell", {"command": "bash -lc 'ls -la'"}),
            ],
        ),
        ("tool", [("tool_result", "item_1", ls_output, False)]),
        (
            "assistant",
            [
                ("tool_call", "item_2.1", "update_plan", {"items": plan_1}),
                ("tool_call", "item_3", "shell", {"command": "bash -lc 'pip install acme-sdk'"}),
            ],
        ),
        (
            "tool",
            [
                (
                    "tool_result",
                    "item_3",
                    "ERROR: Could not find a version that satisfies the requirement acme-sdk\n"
                    "\n[exit code 1]",
                    True,
                )
            ],
        ),
        (
            "assistant",
            [
                ("tool_call", "item_2.2", "update_plan", {"items": plan_2}),
                (
                    "tool_call",
                    "item_4",
                    "apply_patch",
                    {"changes": [{"path": "create_customer.py", "kind": "add"}]},
                ),
            ],
        ),
        ("tool", [("tool_result", "item_4", "add create_customer.py", False)]),
        ("assistant", [("text", answer)]),
    ]
    assert transcript.final_answer == answer
    assert transcript.termination_reason == "completed"
    assert parsed.error is None
    assert transcript.stats.model_dump(exclude_none=True) == {
        "token_in": 24763,
        "token_out": 122,
        "cached_input_tokens": 24448,
    }


def test_a_failed_codex_turn_is_an_agent_error_and_reconnects_are_not() -> None:
    parsed = parse_output("codex-jsonl", read("codex_failed.jsonl"), PROMPT)
    assert parsed.error == "unexpected status 401 Unauthorized: Incorrect API key provided"
    assert parsed.transcript.termination_reason == "error"
    assert shape(parsed.transcript) == [
        ("user", [("text", PROMPT)]),
        ("assistant", [("thinking", "**Planning the change**")]),
    ]


def test_codex_mcp_calls_web_searches_and_error_items() -> None:
    lines = [
        {
            "type": "item.started",
            "item": {
                "id": "item_5",
                "type": "mcp_tool_call",
                "server": "docs",
                "tool": "search",
                "arguments": {"q": "webhooks"},
                "status": "in_progress",
            },
        },
        {
            "type": "item.completed",
            "item": {
                "id": "item_5",
                "type": "mcp_tool_call",
                "server": "docs",
                "tool": "search",
                "arguments": {"q": "webhooks"},
                "result": {"content": [{"type": "text", "text": "Found 3 matches."}]},
                "status": "completed",
            },
        },
        {"type": "item.completed", "item": {"id": "item_7", "type": "web_search", "query": "x"}},
        {"type": "item.completed", "item": {"id": "item_9", "type": "error", "message": "late"}},
    ]
    parsed = parse_output("codex-jsonl", "\n".join(map(json.dumps, lines)), PROMPT)
    assert shape(parsed.transcript) == [
        ("user", [("text", PROMPT)]),
        ("assistant", [("tool_call", "item_5", "docs.search", {"q": "webhooks"})]),
        ("tool", [("tool_result", "item_5", "Found 3 matches.", False)]),
        ("assistant", [("tool_call", "item_7", "web_search", {"query": "x"})]),
        ("system", [("text", "[codex] late")]),
    ]
    assert parsed.transcript.termination_reason is None  # no turn.completed: cut off


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "codex-jsonl: no events in the output"),
        ('{"type":"turn.started"}\nnot json', "codex-jsonl line 2: not valid JSON"),
        ('{"type":"item.completed","item":{"id":"i"}}', "line 1: `item.type` expected a string"),
        (
            '{"type":"item.completed","item":{"id":"i","type":"agent_message","text":["a"]}}',
            "line 1: `item.text` expected a string, got an array",
        ),
    ],
)
def test_malformed_codex_output_names_the_line_and_field(text: str, expected: str) -> None:
    assert expected in str(error_of("codex-jsonl", text))


# -- openai-messages, anthropic-messages, tpc -----------------------------------------------


def test_openai_messages_with_tool_calls_and_usage() -> None:
    parsed = parse_output("openai-messages", read("openai_messages.json"), PROMPT)
    transcript = parsed.transcript
    assert shape(transcript) == [
        ("system", [("text", "You are a developer trying the Acme SDK.")]),
        ("user", [("text", "Create a customer named Ada.")]),  # the prompt is not added twice
        (
            "assistant",
            [
                ("tool_call", "call_Qx1", "search_docs", {"query": "create customer"}),
                ("tool_call", "call_Qx2", "shell", {"command": "pip install acme-sdk"}),
            ],
        ),
        ("tool", [("tool_result", "call_Qx1", "guides/customers.md — Customers", False)]),
        ("tool", [("tool_result", "call_Qx2", "Successfully installed acme-sdk-2.1.0", False)]),
        (
            "assistant",
            [("thinking", "The docs say Customer.create."), ("text", "Customer created: cus_123.")],
        ),
    ]
    assert transcript.stats.model_dump(exclude_none=True) == {
        "token_in": 1830,
        "token_out": 214,
        "model": "gpt-4.1-mini",
    }
    assert transcript.termination_reason is None


def test_openai_messages_as_a_bare_list_keep_invalid_arguments_as_sent() -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "function": {"name": "shell", "arguments": "{oops"}}],
        },
        {"role": "function", "name": "shell", "content": None},
    ]
    parsed = parse_output("openai-messages", json.dumps(messages), PROMPT)
    assert shape(parsed.transcript) == [
        ("system", [("text", "Be brief.")]),
        ("user", [("text", PROMPT)]),
        ("assistant", [("tool_call", "c", "shell", "{oops")]),
        ("tool", [("tool_result", None, "", False)]),
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ('{"messages": "hi"}', "`messages` expected an array, got a string"),
        ('[{"role": "robot", "content": "x"}]', "`[0].role` unknown role 'robot'"),
        (
            '[{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]',
            "`[0].tool_calls[0].function.name` expected a string, got null",
        ),
        ('[{"role": "user",\n "content": }]', "not valid JSON (line 2, column"),
        ("", "the agent printed no transcript"),
    ],
)
def test_malformed_openai_messages_name_the_field(document: str, expected: str) -> None:
    error = error_of("openai-messages", document)
    assert expected in str(error)


def test_anthropic_messages_split_tool_results_from_user_text() -> None:
    parsed = parse_output("anthropic-messages", read("anthropic_messages.json"), PROMPT)
    assert shape(parsed.transcript) == [
        ("system", [("text", "You are a developer trying the Acme SDK.")]),
        ("user", [("text", "Create a customer named Ada.")]),
        (
            "assistant",
            [
                ("thinking", "I should search the docs."),
                ("text", "Searching the docs."),
                ("tool_call", "toolu_1", "search_docs", {"query": "create customer"}),
            ],
        ),
        ("tool", [("tool_result", "toolu_1", "guides/customers.md — Customers", False)]),
        ("user", [("text", "Please use Python.")]),
        ("assistant", [("tool_call", "toolu_2", "shell", {"command": "python create.py"})]),
        ("tool", [("tool_result", "toolu_2", "acme.errors.AuthenticationError: 401", True)]),
        (
            "assistant",
            [("text", "I could not create the customer: the API key is rejected (401).")],
        ),
    ]
    assert parsed.transcript.stats.model_dump(exclude_none=True) == {
        "token_in": 2400,
        "token_out": 310,
        "model": "claude-sonnet-4-5",
    }
    stats = derive_stats(parsed.transcript)
    assert (stats.steps, stats.turns, stats.tool_calls) == (3, 2, 2)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ('{"messages": [{"role": "system", "content": "x"}]}', "`messages[0].role` unknown role"),
        (
            '[{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}]',
            "`[0].content[0].name` expected a string, got null",
        ),
        ('[{"role": "user", "content": [{"text": "x"}]}]', "`[0].content[0].type` expected"),
    ],
)
def test_malformed_anthropic_messages_name_the_field(document: str, expected: str) -> None:
    assert expected in str(error_of("anthropic-messages", document))


def test_tpc_documents_are_taken_as_they_are_plus_the_prompt() -> None:
    parsed = parse_output("tpc", read("tpc.json"), PROMPT)
    transcript = parsed.transcript
    assert [m.role for m in transcript.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert transcript.messages[1].content[0].model_dump()["text"] == PROMPT
    assert transcript.termination_reason == "completed"
    assert transcript.stats.cost == 0.002


def test_an_invalid_tpc_document_names_the_message_and_field() -> None:
    error = error_of("tpc", '{"messages": [{"role": "robot", "content": "x"}]}')
    assert "messages[0].role" in str(error)
    assert any(loc == "messages[0].role" for loc, _ in error.problems)


def test_an_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(TranscriptFormatError, match="unknown transcript format 'yaml'"):
        parser_for("yaml")
    assert set(FORMATS) == {
        "tpc",
        "openai-messages",
        "anthropic-messages",
        "claude-stream-json",
        "codex-jsonl",
    }


def test_every_fixture_is_a_valid_tpc_transcript_once_parsed() -> None:
    cases = {
        "claude_stream_json.jsonl": "claude-stream-json",
        "claude_stream_json_max_turns.jsonl": "claude-stream-json",
        "codex.jsonl": "codex-jsonl",
        "codex_failed.jsonl": "codex-jsonl",
        "openai_messages.json": "openai-messages",
        "anthropic_messages.json": "anthropic-messages",
        "tpc.json": "tpc",
    }
    assert set(cases) == {path.name for path in OUTPUTS.iterdir()}
    for name, fmt in cases.items():
        transcript = parse_output(fmt, read(name), PROMPT).transcript
        again = Transcript.model_validate_json(transcript.model_dump_json())
        assert again == transcript
