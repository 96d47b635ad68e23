"""`openai-responses`: OpenAI Responses API items, as a JSON list of items, a response object
(`{"object": "response", "output": […], "model", "usage"}`) or `{"input": […], "output": […]}`.

Items: `message` (user, assistant, system/developer; `input_text`/`output_text` parts),
`reasoning` (its summary and text -> thinking; encrypted-only reasoning has no text to keep),
`function_call`/`custom_tool_call`/`local_shell_call`/`mcp_call` and the built-in tool calls
(`web_search_call`, `file_search_call`, …) -> tool calls; `*_output` items -> tool results.
Consecutive assistant items form one step, closed by a tool result or a user message.

The item mapping is shared with `codex-session`, whose `response_item` lines carry the same
items (Codex writes a shell call's output as text starting `Exit code: N`, or as a JSON
`{"output", "metadata": {"exit_code"}}`; a non-zero code makes the result an error).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Any

from domain.transcript_formats.parsing import (
    DocumentParser,
    Node,
    ParsedOutput,
    message,
    stats,
)
from domain.transcripts import Message, Transcript

NAME = "openai-responses"
# Built-in tool calls with no result item of their own: the call is what is kept.
_BUILTIN_CALLS = {
    "web_search_call": "web_search",
    "file_search_call": "file_search",
    "computer_call": "computer",
    "image_generation_call": "image_generation",
    "code_interpreter_call": "code_interpreter",
}
_OUTPUTS = frozenset(
    {
        "function_call_output",
        "custom_tool_call_output",
        "local_shell_call_output",
        "computer_call_output",
    }
)
# Items that record state rather than conversation.
_SKIPPED = frozenset({"item_reference", "ghost_snapshot", "compaction", "mcp_list_tools"})
_EXIT_CODE = re.compile(r"^Exit code: (-?\d+)")


class ResponseItems:
    """Builds transcript messages from Responses API items, in order."""

    def __init__(self, strict: bool = True) -> None:
        self.messages: list[Message] = []
        self.final_answer: str | None = None
        self._pending: list[dict[str, Any]] = []
        self._strict = strict  # refuse unknown item types (a later Codex's are skipped)

    def add(self, item: Node) -> None:
        kind = item.get("type").opt_text()
        if kind is None and item.has("role"):
            kind = "message"  # the API's short form {"role", "content"}
        handler = _HANDLERS.get(kind or "")
        if handler is not None:
            handler(self, item)
        elif kind in _BUILTIN_CALLS:
            action = item.get("action").value
            self._call(item, _BUILTIN_CALLS[kind], action if isinstance(action, dict) else {})
        elif kind in _OUTPUTS:
            content, failed = _output(item.get("output"))
            self._result(_call_id(item), content, failed)
        elif kind in _SKIPPED:
            return
        elif self._strict:
            item.get("type").fail(
                f"{kind!r} is not a Responses API item (expected message, reasoning, "
                "function_call, function_call_output, …)"
            )

    def _reasoning(self, item: Node) -> None:
        text = _reasoning_text(item)
        if text:
            self._pending.append({"type": "thinking", "thinking": text})

    def _function_call(self, item: Node) -> None:
        self._call(item, item.get("name").text(), _arguments(item.get("arguments")))

    def _custom_tool_call(self, item: Node) -> None:
        self._call(item, item.get("name").text(), item.get("input").value or "")

    def _shell_call(self, item: Node) -> None:
        command = item.get("action").get("command").value
        text = shlex.join(map(str, command)) if isinstance(command, list) else str(command)
        self._call(item, "shell", {"command": text})

    def _mcp_call(self, item: Node) -> None:
        """An MCP call comes with its result in the same item."""
        name = f"{item.get('server_label').opt_text() or 'mcp'}.{item.get('name').text()}"
        self._call(item, name, _arguments(item.get("arguments")))
        error = item.get("error").value
        output = item.get("output").value
        self._result(_call_id(item), str(error or output or ""), bool(error))

    def finish(self) -> list[Message]:
        self._flush()
        return self.messages

    def _message(self, item: Node) -> None:
        role = item.get("role").text()
        text = _content_text(item.get("content"))
        if role == "assistant":
            if text:
                self._pending.append({"type": "text", "text": text})
                self.final_answer = text
            return
        self._flush()
        if role in ("system", "developer"):
            self.messages.append(message("system", [text], item))
        elif role == "user":
            self.messages.append(message("user", [text], item))
        else:
            item.get("role").fail(
                f"unknown role {role!r} (expected user, assistant, system or developer)"
            )

    def _call(self, item: Node, name: str, tool_input: Any) -> None:
        block = {"type": "tool_call", "id": _call_id(item), "name": name, "input": tool_input}
        self._pending.append(block)

    def _result(self, call_id: str | None, content: str, failed: bool) -> None:
        self._flush()
        block = {
            "type": "tool_result",
            "tool_call_id": call_id,
            "content": content,
            "is_error": failed,
        }
        self.messages.append(message("tool", [block]))

    def _flush(self) -> None:
        if self._pending:
            self.messages.append(message("assistant", self._pending))
            self._pending = []


class OpenAIResponsesParser(DocumentParser):
    name = NAME

    def parse(self, document: Node) -> ParsedOutput:
        builder = ResponseItems()
        model = token_in = token_out = cached = None
        if isinstance(document.value, list):
            lists = [document]
        else:
            document.obj()
            lists = [document.get(key) for key in ("input", "output") if document.has(key)]
            if not lists:
                document.fail(
                    "expected a list of Responses API items, a response object (`output`) or "
                    "`input` items"
                )
            model = document.get("model").opt_text()
            if document.has("usage"):
                usage = document.get("usage")
                token_in = usage.get("input_tokens").opt_int()
                token_out = usage.get("output_tokens").opt_int()
                cached = usage.get("input_tokens_details").get("cached_tokens").opt_int()
        for items in lists:
            for item in items.items():
                item.obj()
                builder.add(item)
        messages = builder.finish()
        recorded = stats(
            model=model, token_in=token_in, token_out=token_out, cached_input_tokens=cached
        )
        transcript = Transcript(
            messages=messages, stats=recorded, final_answer=builder.final_answer
        )
        return ParsedOutput(transcript)


def _call_id(item: Node) -> str | None:
    return item.get("call_id").opt_text() or item.get("id").opt_text()


def _arguments(node: Node) -> Any:
    if not isinstance(node.value, str):
        return node.value if node.value is not None else {}
    try:
        return json.loads(node.value) if node.value.strip() else {}
    except ValueError:
        return node.value  # what the model sent, kept as it was


def _content_text(node: Node) -> str:
    if node.value is None:
        return ""
    if isinstance(node.value, str):
        return node.value
    parts: list[str] = []
    for part in node.items():
        kind = part.get("type").opt_text() or "text"
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(part.get("text").text())
        elif kind == "refusal":
            parts.append(part.get("refusal").text())
        elif kind in ("tool_use", "tool_result", "tool_call"):
            part.get("type").fail(f"{kind!r} is not a Responses API content part")
        else:
            parts.append(f"[{kind.removeprefix('input_')}]")
    return "\n".join(parts)


def _reasoning_text(item: Node) -> str:
    texts = [_content_text(item.get(key)) for key in ("summary", "content") if item.has(key)]
    return "\n".join(text for text in texts if text)


def _output(node: Node) -> tuple[str, bool]:
    """A tool output as text, and whether it failed (Codex records the exit code)."""
    value = node.value
    if isinstance(value, list):
        return _content_text(node), False
    if isinstance(value, dict):
        value = json.dumps(value)
    text = "" if value is None else str(value)
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and "output" in decoded:
        metadata = decoded.get("metadata")
        code = metadata.get("exit_code") if isinstance(metadata, dict) else None
        return str(decoded["output"]), isinstance(code, int) and code != 0
    match = _EXIT_CODE.match(text)
    return text, bool(match and int(match.group(1)) != 0)


# The item types read by a method of their own (the rest: built-in calls, outputs, skipped).
_HANDLERS: dict[str, Callable[[ResponseItems, Node], None]] = {
    "message": ResponseItems._message,
    "reasoning": ResponseItems._reasoning,
    "function_call": ResponseItems._function_call,
    "custom_tool_call": ResponseItems._custom_tool_call,
    "local_shell_call": ResponseItems._shell_call,
    "mcp_call": ResponseItems._mcp_call,
}
