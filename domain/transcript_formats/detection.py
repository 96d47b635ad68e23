"""Which format a log file is in, told from its content (the `auto` format).

Each format has a signature: a shape no other format has (the event types of Codex's JSONL,
the `parentUuid` of Claude Code's session lines, the `eval` header of an Inspect log). A file
that matches none is refused with what was seen, so the user can name the format.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from domain.transcript_formats.parsing import TranscriptFormatError, decode_text

ZIP_MAGIC = b"PK\x03\x04"
# The first lines looked at in a JSONL file: enough to pass a header line or two.
_PROBE_LINES = 20

CODEX_EVENTS = frozenset(
    {
        "thread.started",
        "turn.started",
        "turn.completed",
        "turn.failed",
        "item.started",
        "item.updated",
        "item.completed",
    }
)
CODEX_SESSION_TYPES = frozenset(
    {"session_meta", "response_item", "event_msg", "turn_context", "compacted"}
)
CLAUDE_STREAM_TYPES = frozenset({"system", "assistant", "user", "result", "stream_event"})
CLAUDE_SESSION_ONLY_TYPES = frozenset({"summary", "file-history-snapshot", "queue-operation"})
RESPONSES_ITEM_TYPES = frozenset(
    {
        "function_call",
        "function_call_output",
        "reasoning",
        "custom_tool_call",
        "custom_tool_call_output",
        "local_shell_call",
        "local_shell_call_output",
        "web_search_call",
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "mcp_call",
    }
)
ANTHROPIC_BLOCK_TYPES = frozenset(
    {"tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use"}
)
TPC_BLOCK_TYPES = frozenset({"tool_call"})


def detect(file_name: str, data: bytes) -> str:
    """The format name of one file; `TranscriptFormatError` when no format recognises it."""
    if data.startswith(ZIP_MAGIC):
        return "inspect-log"
    text = decode_text(data, file_name)
    if not text.strip():
        _unknown(file_name, "the file is empty")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    else:
        found = _document_format(document)
        if found is not None:
            return found
    lines = _probe_lines(text)
    if lines:
        found = _lines_format(lines)
        if found is not None:
            return found
    if document is None and not lines:
        _unknown(file_name, "neither a JSON document nor JSON lines")
    return _unknown(file_name, _describe(document if document is not None else lines[0]))


def _document_format(document: Any) -> str | None:
    if isinstance(document, list):
        return _list_format(document)
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("eval"), dict) and ("samples" in document or "status" in document):
        return "inspect-log"
    if document.get("version") == 1 and isinstance(document.get("messages"), list):
        return "tpc"
    if _is_mini_swe_agent(document):
        return "mini-swe-agent"
    if document.get("object") == "response" and isinstance(document.get("output"), list):
        return "openai-responses"
    io_lists = [document[key] for key in ("input", "output") if isinstance(document.get(key), list)]
    if any(_message_list_format(items) == "openai-responses" for items in io_lists):
        return "openai-responses"
    if isinstance(document.get("messages"), list):
        found = _message_list_format(document["messages"])
        if found == "openai-messages" and "system" in document:
            return "anthropic-messages"  # only Anthropic's wrapper has a top-level system
        return found
    return None


def _list_format(document: list[Any]) -> str | None:
    """A list of tpc transcripts, or of chat messages."""
    if document and all(isinstance(item, dict) and item.get("version") == 1 for item in document):
        return "tpc"
    return _message_list_format(document)


def _is_mini_swe_agent(document: dict[str, Any]) -> bool:
    if str(document.get("trajectory_format", "")).startswith("mini-swe-agent"):
        return True
    info = document.get("info")
    return (
        isinstance(info, dict)
        and "messages" in document
        and ("mini_version" in info or "exit_status" in info)
    )


def _message_list_format(items: list[Any]) -> str | None:
    """A list of chat messages: Anthropic's, OpenAI's, or the Responses API's items."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    if any(_is_responses_item(item) for item in items):
        return "openai-responses"
    if not all("role" in item for item in items):
        return None
    if any(_block_types(item) & TPC_BLOCK_TYPES for item in items):
        return None  # tpc messages without their transcript around them
    if any(_block_types(item) & ANTHROPIC_BLOCK_TYPES for item in items) or any(
        isinstance(item.get("usage"), dict) and "input_tokens" in item["usage"] for item in items
    ):
        return "anthropic-messages"
    return "openai-messages"


def _is_responses_item(item: dict[str, Any]) -> bool:
    kind = item.get("type")
    if kind in RESPONSES_ITEM_TYPES:
        return True
    return kind == "message" and any(t in ("input_text", "output_text") for t in _block_types(item))


def _block_types(item: dict[str, Any]) -> set[str]:
    content = item.get("content")
    if not isinstance(content, list):
        return set()
    return {block["type"] for block in content if isinstance(block, dict) and "type" in block}


def _probe_lines(text: str) -> list[dict[str, Any]]:
    """The first JSON-object lines of the text; empty when a probed line is not one."""
    lines: list[dict[str, Any]] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            return []
        if not isinstance(value, dict):
            return []
        lines.append(value)
        if len(lines) >= _PROBE_LINES:
            break
    return lines


def _lines_format(lines: list[dict[str, Any]]) -> str | None:
    for line in lines:
        kind = line.get("type")
        if kind in CODEX_EVENTS or (isinstance(line.get("msg"), dict) and "id" in line):
            return "codex-jsonl"
        if kind in CODEX_SESSION_TYPES and "payload" in line:
            return "codex-session"
        if kind in CLAUDE_SESSION_ONLY_TYPES or "parentUuid" in line or "sessionId" in line:
            return "claude-code-session"
        if kind in CLAUDE_STREAM_TYPES and "session_id" in line:
            return "claude-stream-json"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(value)[:8])
        kind = f" of type {value['type']!r}" if isinstance(value.get("type"), str) else ""
        return f"an object{kind} with keys {keys}"
    if isinstance(value, list):
        return f"an array of {len(value)} items that are not chat messages"
    return f"a JSON {type(value).__name__}"


def _unknown(file_name: str, seen: str) -> NoReturn:
    problem = f"cannot tell the format: {seen}; give it with --from (see docs/formats.md)"
    raise TranscriptFormatError(f"{file_name}: {problem}", (("", problem),))
