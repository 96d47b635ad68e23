"""`openai-messages`: a JSON list of Chat Completions messages, or `{"messages": […]}`.

Roles `system`/`developer` -> system, `user`, `assistant` (text, `reasoning_content` ->
thinking, `tool_calls` -> tool calls whose JSON-string `arguments` become the input), `tool`
(by `tool_call_id`) and the legacy `function` role -> tool results. An object may also carry
`model` and `usage` (`prompt_tokens`, `completion_tokens`), which become stats.

Blocks of other formats (Anthropic's `tool_use`, `tool_result`, `thinking`; tpc's `tool_call`;
the Responses API's `input_text`/`output_text`) are refused, as is a mini-swe-agent trajectory
(which has a reader of its own), so a file in another format is not read as a partial
transcript.
"""

from __future__ import annotations

import json
from typing import Any

from domain.transcript_formats.parsing import DocumentParser, Node, ParsedOutput, message, stats
from domain.transcripts import Message, Transcript

# Non-text content parts are kept as a marker: the transcript records that they were there.
_PART_MARKERS = {"image_url": "[image]", "input_audio": "[audio]", "file": "[file]"}
_FOREIGN_PARTS = {
    "tool_use": "anthropic-messages",
    "tool_result": "anthropic-messages",
    "thinking": "anthropic-messages",
    "redacted_thinking": "anthropic-messages",
    "tool_call": "tpc",
    "input_text": "openai-responses",
    "output_text": "openai-responses",
}


class OpenAIMessagesParser(DocumentParser):
    name = "openai-messages"

    def parse(self, document: Node) -> ParsedOutput:
        items, model, usage = document, None, None
        if isinstance(document.value, dict):
            if document.has("trajectory_format") or document.get("info").has("exit_status"):
                document.fail("a mini-swe-agent trajectory (read it as mini-swe-agent)")
            items = document.get("messages")
            model = document.get("model").opt_text()
            usage = document.get("usage") if document.has("usage") else None
        messages = [_message(node) for node in items.items()]
        token_in = token_out = None
        if usage is not None:
            token_in = (
                usage.get("prompt_tokens").opt_int()
                if usage.has("prompt_tokens")
                else usage.get("input_tokens").opt_int()
            )
            token_out = (
                usage.get("completion_tokens").opt_int()
                if usage.has("completion_tokens")
                else usage.get("output_tokens").opt_int()
            )
        recorded = stats(model=model, token_in=token_in, token_out=token_out)
        return ParsedOutput(Transcript(messages=messages, stats=recorded))


def _message(node: Node) -> Message:
    role = node.get("role").text()
    if role in ("system", "developer"):
        return message("system", [_text(node.get("content"))], node)
    if role == "user":
        return message("user", [_text(node.get("content"))], node)
    if role == "assistant":
        return message("assistant", _assistant_blocks(node), node)
    if role in ("tool", "function"):
        call_id = node.get("tool_call_id").opt_text() if role == "tool" else None
        content = _text(node.get("content"))
        result = {"type": "tool_result", "tool_call_id": call_id, "content": content}
        return message("tool", [result], node)
    node.get("role").fail(
        f"unknown role {role!r} (expected system, developer, user, assistant, tool or function)"
    )


def _assistant_blocks(node: Node) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for key in ("reasoning_content", "reasoning"):
        thinking = node.get(key)
        if isinstance(thinking.value, str) and thinking.value:
            blocks.append({"type": "thinking", "thinking": thinking.value})
            break
    if node.has("content"):
        text = _text(node.get("content"))
        if text:
            blocks.append({"type": "text", "text": text})
    refusal = node.get("refusal").opt_text()
    if refusal:
        blocks.append({"type": "text", "text": refusal})
    if node.has("tool_calls"):
        for call in node.get("tool_calls").items():
            function = call.get("function")
            blocks.append(
                {
                    "type": "tool_call",
                    "id": call.get("id").opt_text(),
                    "name": function.get("name").text(),
                    "input": _arguments(function.get("arguments")),
                }
            )
    if node.has("function_call"):
        function = node.get("function_call")
        blocks.append(
            {
                "type": "tool_call",
                "name": function.get("name").text(),
                "input": _arguments(function.get("arguments")),
            }
        )
    return blocks


def _arguments(node: Node) -> Any:
    """The call's input: the decoded JSON string, or the raw string when the model wrote
    invalid JSON (a faithful record of what it sent, not a reason to reject the transcript)."""
    if node.value is None:
        return {}
    if not isinstance(node.value, str):
        return node.value
    try:
        return json.loads(node.value) if node.value.strip() else {}
    except ValueError:
        return node.value


def _text(node: Node) -> str:
    """`content` as text: a string, null, or a list of content parts."""
    if node.value is None:
        return ""
    if isinstance(node.value, str):
        return node.value
    parts: list[str] = []
    for part in node.items():
        kind = part.get("type").opt_text() or "text"
        if kind in _FOREIGN_PARTS:
            part.get("type").fail(
                f"{kind!r} is not a Chat Completions content part (it is "
                f"{_FOREIGN_PARTS[kind]}'s; expected text, image_url, input_audio, file, refusal)"
            )
        if kind == "text":
            parts.append(part.get("text").text())
        elif kind == "refusal":
            parts.append(part.get("refusal").text())
        else:
            parts.append(_PART_MARKERS.get(kind, f"[{kind}]"))
    return "\n".join(parts)
