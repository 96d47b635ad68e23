"""`anthropic-messages`: a JSON list of Messages API messages, or `{"system", "messages"}`.

Assistant content blocks `text`, `thinking` (and `redacted_thinking`), `tool_use` (and the
server-side `server_tool_use`) map to text, thinking and tool calls; `tool_result` blocks inside
a user message become a `tool` message of their own (placed before any text of that user
message). An object may carry `model` and `usage` (`input_tokens`, `output_tokens`); without
them, the `model` and `usage` recorded on each assistant message (lists built from API
responses carry them) are summed, cached input tokens counted as read.

Keys and blocks of other formats (OpenAI's `tool_calls`, `tool_call_id`, `image_url` or
`input_text` parts, tpc's `tool_call` blocks, a `system` role) are refused, so a file in
another format is not read as an empty or partial transcript.

The block mapping is shared with `claude-stream-json`, whose lines carry the same messages.
"""

from __future__ import annotations

from typing import Any

from domain.transcript_formats.parsing import DocumentParser, Node, ParsedOutput, message, stats
from domain.transcripts import Message, Transcript

_MARKERS = {"image": "[image]", "document": "[document]", "search_result": "[search result]"}
# Keys and content-part types that only other formats use.
_FOREIGN_KEYS = ("tool_calls", "tool_call_id", "function_call", "reasoning_content")
_FOREIGN_BLOCKS = frozenset(
    {
        "tool_call",
        "image_url",
        "input_text",
        "output_text",
        "input_image",
        "input_audio",
        "refusal",
        "function_call",
        "reasoning",
    }
)


class AnthropicMessagesParser(DocumentParser):
    name = "anthropic-messages"

    def parse(self, document: Node) -> ParsedOutput:
        items, model, token_in, token_out = document, None, None, None
        messages: list[Message] = []
        if isinstance(document.value, dict):
            items = document.get("messages")
            system = document.get("system")
            if system.value:
                messages.append(message("system", [tool_result_text(system)], system))
            model = document.get("model").opt_text()
            if document.has("usage"):
                usage = document.get("usage")
                token_in = usage.get("input_tokens").opt_int()
                token_out = usage.get("output_tokens").opt_int()
        nodes = list(items.items())
        for node in nodes:
            _refuse_foreign(node)
            messages.extend(api_message(node))
        cache_read = cache_creation = None
        if token_in is None and token_out is None:
            model, token_in, token_out, cache_read, cache_creation = _per_message_usage(
                nodes, model
            )
        recorded = stats(
            model=model,
            token_in=token_in,
            token_out=token_out,
            cache_read_tokens=cache_read,
            cache_creation_tokens=cache_creation,
        )
        return ParsedOutput(Transcript(messages=messages, stats=recorded))


def _per_message_usage(
    nodes: list[Node], model: str | None
) -> tuple[str | None, int | None, int | None, int | None, int | None]:
    """The model and token counts recorded on each assistant message, summed (None when no
    message records usage). Input counts every token read: uncached, cache reads and writes."""
    token_in = token_out = cache_read = cache_creation = 0
    seen = False
    for node in nodes:
        if node.get("role").opt_text() != "assistant":
            continue
        model = model or node.get("model").opt_text()
        if not node.has("usage"):
            continue
        seen = True
        usage = node.get("usage")
        read = usage.get("cache_read_input_tokens").opt_int() or 0
        written = usage.get("cache_creation_input_tokens").opt_int() or 0
        token_in += (usage.get("input_tokens").opt_int() or 0) + read + written
        token_out += usage.get("output_tokens").opt_int() or 0
        cache_read += read
        cache_creation += written
    if not seen:
        return model, None, None, None, None
    return model, token_in, token_out, cache_read, cache_creation


def _refuse_foreign(node: Node) -> None:
    for key in _FOREIGN_KEYS:
        if node.has(key):
            node.get(key).fail(
                "an OpenAI Chat Completions key, not an Anthropic Messages one "
                "(is this openai-messages?)"
            )
    content = node.get("content")
    if isinstance(content.value, list):
        for block in content.items():
            kind = block.get("type").opt_text() if isinstance(block.value, dict) else None
            if kind in _FOREIGN_BLOCKS:
                block.get("type").fail(
                    f"{kind!r} is not an Anthropic Messages content block (expected text, "
                    "image, tool_use, tool_result, thinking, …)"
                )


def api_message(node: Node, default_role: str | None = None) -> list[Message]:
    """One Messages API message as transcript messages (a user message with tool results may
    become two: the results, then its text)."""
    role = node.get("role").text() if default_role is None or node.has("role") else default_role
    content = node.get("content")
    if role == "assistant":
        return [message("assistant", assistant_blocks(content), node)]
    if role != "user":
        node.get("role").fail(
            f"unknown role {role!r} (expected user or assistant: the Messages API has no "
            f"{role} messages)"
        )
    if isinstance(content.value, str):
        return [message("user", [{"type": "text", "text": content.value}], node)]
    results: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for block in content.items():
        kind = block.get("type").text()
        if kind == "tool_result":
            results.append(tool_result(block))
        elif kind == "text":
            texts.append({"type": "text", "text": block.get("text").text()})
        else:
            texts.append({"type": "text", "text": _MARKERS.get(kind, f"[{kind}]")})
    out = [message("tool", results, node)] if results else []
    if texts or not results:
        out.append(message("user", texts, node))
    return out


def assistant_blocks(content: Node) -> list[dict[str, Any]]:
    if isinstance(content.value, str):
        return [{"type": "text", "text": content.value}]
    blocks: list[dict[str, Any]] = []
    for block in content.items():
        kind = block.get("type").text()
        if kind == "text":
            blocks.append({"type": "text", "text": block.get("text").text()})
        elif kind == "thinking":
            blocks.append({"type": "thinking", "thinking": block.get("thinking").text()})
        elif kind == "redacted_thinking":
            blocks.append({"type": "thinking", "thinking": "[redacted thinking]"})
        elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
            name = block.get("name").text()
            if kind == "mcp_tool_use" and block.has("server_name"):
                name = f"{block.get('server_name').text()}.{name}"
            blocks.append(
                {
                    "type": "tool_call",
                    "id": block.get("id").opt_text(),
                    "name": name,
                    "input": block.get("input").value if block.has("input") else {},
                }
            )
        elif kind.endswith("_tool_result"):
            # Results of server-side tools (web search, code execution) arrive in the
            # assistant's own message.
            blocks.append(tool_result(block))
        else:
            blocks.append({"type": "text", "text": _MARKERS.get(kind, f"[{kind}]")})
    return blocks


def tool_result(block: Node) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_call_id": block.get("tool_use_id").opt_text(),
        "content": tool_result_text(block.get("content")),
        "is_error": block.get("is_error").flag(),
    }


def tool_result_text(content: Node) -> str:
    """A string, or a list of content blocks (text joined, others as a marker)."""
    if content.value is None:
        return ""
    if isinstance(content.value, str):
        return content.value
    if isinstance(content.value, dict):
        # e.g. a server tool's error object: keep it readable rather than fail.
        return str(content.value.get("error_code") or content.value.get("type") or content.value)
    parts: list[str] = []
    for block in content.items():
        kind = block.get("type").opt_text() or "text"
        if kind == "text":
            parts.append(block.get("text").text())
        elif kind == "web_search_result":
            title, url = block.get("title").opt_text(), block.get("url").opt_text()
            parts.append(" ".join(p for p in (title, url) if p))
        else:
            parts.append(_MARKERS.get(kind, f"[{kind}]"))
    return "\n".join(parts)
