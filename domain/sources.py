"""Sources (SPEC §3.1): which text of a transcript a signal reads.

Every renderer returns *parts*, each tagged with the index of the message it came from, so that
evidence can point at the transcript event a match was found in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple, get_args

from pydantic_core import to_json

from domain.transcripts import (
    Block,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Transcript,
)

Source = Literal[
    "assistantText",
    "userText",
    "thinkingText",
    "toolCalls",
    "toolResults",
    "codeText",
    "finalAnswer",
    "any",
]
SOURCES: tuple[str, ...] = get_args(Source)
MESSAGE_SOURCES: tuple[str, ...] = tuple(s for s in SOURCES if s != "finalAnswer")

# A part of a source's text: (message index or None, text).
Part = tuple[int | None, str]

# The body of a fenced code block: ``` or longer fences, optional info string, closing fence.
_FENCED_CODE = re.compile(r"(?ms)^[ \t]*(`{3,})[^\n`]*\n(.*?)^[ \t]*\1[ \t]*$")


def compact_json(value: Any) -> str:
    """Compact JSON, keys in their given order, non-ASCII kept (pydantic-core: ~4x json's speed)."""
    return to_json(value).decode("utf-8")


def render_tool_call(block: ToolCallBlock) -> str:
    return f"{block.name} {compact_json(block.input)}"


def code_bodies(text: str) -> list[str]:
    """Bodies of the fenced code blocks in markdown-ish text, without their fences."""
    if "```" not in text:
        return []
    return [match.group(2).removesuffix("\n") for match in _FENCED_CODE.finditer(text)]


class RenderedBlock(NamedTuple):
    """A block rendered once: its message, role, kind, its text as `any` shows it, and, for
    tool calls, the input as compact JSON (what `codeText` reads). A tuple: cheap to make."""

    event: int
    role: str
    kind: str
    text: str
    code: str | None = None


def render_blocks(transcript: Transcript) -> list[RenderedBlock]:
    """Every block of the transcript, rendered once, in order."""
    out: list[RenderedBlock] = []
    for index, message in enumerate(transcript.messages):
        out.extend(_render(index, message.role, block) for block in message.content)
    return out


def _render(event: int, role: str, block: Block) -> RenderedBlock:
    if isinstance(block, TextBlock):
        return RenderedBlock(event, role, "text", block.text)
    if isinstance(block, ThinkingBlock):
        return RenderedBlock(event, role, "thinking", block.thinking)
    if isinstance(block, ToolCallBlock):
        code = compact_json(block.input)
        return RenderedBlock(event, role, "tool_call", f"{block.name} {code}", code)
    assert isinstance(block, ToolResultBlock)
    return RenderedBlock(event, role, "tool_result", block.content)


def parts_of(blocks: Iterable[RenderedBlock], source: str | None) -> list[Part]:
    """The parts of `source` (None or `any` = everything) among rendered blocks."""
    if source is None or source == "any":
        return [(b.event, b.text) for b in blocks]
    if source == "codeText":
        parts: list[Part] = []
        for b in blocks:
            if b.kind == "tool_call":
                parts.append((b.event, b.code or ""))
            elif b.kind in ("text", "thinking"):
                parts.extend((b.event, body) for body in code_bodies(b.text))
        return parts
    kind, role = _SOURCE_FILTER[source]
    return [
        (b.event, b.text) for b in blocks if b.kind == kind and (role is None or b.role == role)
    ]


# Which blocks a plain source reads: (block kind, required role or None).
_SOURCE_FILTER: dict[str, tuple[str, str | None]] = {
    "assistantText": ("text", "assistant"),
    "userText": ("text", "user"),
    "thinkingText": ("thinking", None),
    "toolCalls": ("tool_call", None),
    "toolResults": ("tool_result", None),
}


def message_text(message: Message, source: str | None = None) -> str:
    """The text of one message for a message-scoped signal (SPEC §3.1)."""
    rendered = [_render(0, message.role, block) for block in message.content]
    return "\n".join(text for _, text in parts_of(rendered, source))


def source_parts(transcript: Transcript, source: str) -> list[Part]:
    """The parts of a run-scoped source, in transcript order, each with its message index."""
    if source == "finalAnswer":
        return [final_answer_part(transcript)]
    return parts_of(render_blocks(transcript), source)


def source_text(transcript: Transcript, source: str) -> str:
    """The whole text of a source: its parts joined with newlines."""
    return "\n".join(text for _, text in source_parts(transcript, source))


def final_answer_part(transcript: Transcript) -> Part:
    """`final_answer` if recorded, else the text of the last assistant message that has text."""
    if transcript.final_answer is not None:
        return None, transcript.final_answer
    for index in range(len(transcript.messages) - 1, -1, -1):
        message = transcript.messages[index]
        if message.role != "assistant":
            continue
        texts = [b.text for b in message.content if isinstance(b, TextBlock)]
        if texts:
            return index, "\n".join(texts)
    return None, ""


def final_answer(transcript: Transcript) -> str:
    return final_answer_part(transcript)[1]
