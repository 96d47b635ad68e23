"""Sources (docs/spec.md §3.1): which text of a transcript a signal reads.

Every renderer returns *parts*, each tagged with the index of the message it came from, so that
evidence can point at the transcript event a match was found in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
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


def compact_json(value: Any) -> str:
    """Compact JSON, keys in their given order, non-ASCII kept (pydantic-core: ~4x json's speed)."""
    return to_json(value).decode("utf-8")


def render_tool_call(block: ToolCallBlock) -> str:
    return f"{block.name} {compact_json(block.input)}"


def code_bodies(text: str) -> list[str]:
    """Bodies of the fenced code blocks in markdown-ish text, without their fences.

    A block opens on a line of indentation (spaces, tabs), three or more backticks and an info
    string without backticks, and closes at the next line of indentation, the same backticks
    and trailing blanks: what the regex `(?ms)^[ \\t]*(`{3,})[^\\n`]*\\n(.*?)^[ \\t]*\\1[ \\t]*$`
    finds (the tests compare the two). Python's engine tries that lazy body at every
    character; jumping from fence to fence with `str.find` is several times faster."""
    bodies: list[str] = []
    fence = text.find("```")
    while fence >= 0:
        newline = text.find("\n", fence)
        if newline < 0:
            break  # an opening line ends with a newline
        ticks = fence + 3
        while text.startswith("`", ticks):
            ticks += 1
        line = text.rfind("\n", 0, fence) + 1
        if _is_indent(text, line, fence) and text.find("`", ticks, newline) < 0:
            closing = _closing_line(text, text[fence:ticks], newline + 1)
            if closing is not None:
                closing_start, closing_end = closing
                bodies.append(text[newline + 1 : closing_start].removesuffix("\n"))
                fence = text.find("```", closing_end)
                continue
        fence = text.find("```", newline + 1)  # not an open block: from the next line
    return bodies


def _closing_line(text: str, ticks: str, pos: int) -> tuple[int, int] | None:
    """The first line from `pos` (a line start) that closes a block opened by `ticks`: where
    it starts and where its trailing blanks end."""
    found = text.find(ticks, pos)
    while found >= 0:
        end = found + len(ticks)
        while text.startswith((" ", "\t"), end):
            end += 1
        line = text.rfind("\n", 0, found) + 1
        if (end == len(text) or text[end] == "\n") and _is_indent(text, line, found):
            return line, end
        newline = text.find("\n", found)
        if newline < 0:
            return None
        found = text.find(ticks, newline + 1)
    return None


def _is_indent(text: str, start: int, end: int) -> bool:
    return not text[start:end].strip(" \t")


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


# A source's parts as UTF-8: their message indexes and texts.
EncodedParts = tuple[list[int | None], list[bytes]]
MessageSource = tuple[str | None, str | None]  # (role, source or None: every block)


def encode_sources(
    transcript: Transcript,
    run_sources: Collection[str],
    message_sources: Collection[MessageSource],
) -> tuple[dict[str, EncodedParts], dict[MessageSource, EncodedParts]]:
    """Several sources of one transcript at once, UTF-8 encoded, in one pass over its blocks:
    for each run-scoped source its parts (`source_parts`; not `finalAnswer`), and for each
    (role, source) the text of every message of that role (`message_text`). Each block is
    rendered and encoded once however many sources read it (the extraction tests check
    that the texts are the same)."""
    runs: dict[str, EncodedParts] = {s: ([], []) for s in run_sources if s != "finalAnswer"}
    everything = runs.get("any")
    plain = {source: runs[source] for source in runs if source in _SOURCE_FILTER}
    code = runs.get("codeText")
    messages: dict[MessageSource, EncodedParts] = {key: ([], []) for key in message_sources}
    by_role: dict[str | None, list[tuple[str | None, EncodedParts]]] = {}
    for key, encoded in messages.items():
        by_role.setdefault(key[0], []).append((key[1], encoded))
    with_code = code is not None or any(source == "codeText" for _, source in message_sources)
    for index, message in enumerate(transcript.messages):
        wanted = by_role.get(message.role)
        # This message's blocks, when a message-scoped source reads it: (tag, text, code).
        blocks: list[_EncodedBlock] = []
        for block in message.content:
            tag, text, data, input_json = _encode_block(index, message.role, block)
            if everything is not None:
                everything[0].append(index)
                everything[1].append(data)
            target = plain.get(tag)
            if target is not None:
                target[0].append(index)
                target[1].append(data)
            codes = _codes_of(tag, text, input_json) if with_code else _NO_CODE
            if code is not None and codes:
                code[0].extend([index] * len(codes))
                code[1].extend(codes)
            if wanted:
                blocks.append((tag, data, codes))
        for source, (events, parts) in wanted or ():
            events.append(index)
            parts.append(_message_part(blocks, source))
    return runs, messages


# One block of a message as message-scoped sources read it: (tag, UTF-8 text, code bodies).
_EncodedBlock = tuple[str, bytes, Sequence[bytes]]
_NO_CODE: tuple[bytes, ...] = ()


def _encode_block(index: int, role: str, block: Block) -> tuple[str, str, bytes, bytes | None]:
    """A block's tag (the plain source that reads it), its text, that text as UTF-8, and a tool
    call's input as JSON (None for other blocks)."""
    kind = type(block)
    if kind is TextBlock:
        text = block.text  # type: ignore[union-attr]
        return _TEXT_TAGS[role], text, text.encode("utf-8"), None
    if kind is ToolResultBlock:
        text = block.content  # type: ignore[union-attr]
        return "toolResults", text, text.encode("utf-8"), None
    if kind is ThinkingBlock:
        text = block.thinking  # type: ignore[union-attr]
        return "thinkingText", text, text.encode("utf-8"), None
    if kind is ToolCallBlock:  # `render_tool_call`, encoded: JSON comes as UTF-8
        input_json = to_json(block.input)  # type: ignore[union-attr]
        data = block.name.encode("utf-8") + b" " + input_json  # type: ignore[union-attr]
        return "toolCalls", "", data, input_json
    # A subclass: the general renderer.
    rendered = _render(index, role, block)
    code = None if rendered.code is None else rendered.code.encode("utf-8")
    tag = _KIND_TAGS[rendered.kind] or _TEXT_TAGS[role]
    return tag, rendered.text, rendered.text.encode("utf-8"), code


def _codes_of(tag: str, text: str, input_json: bytes | None) -> Sequence[bytes]:
    """What `codeText` reads of a block: a tool call's input, or prose's fenced code bodies."""
    if input_json is not None:
        return [input_json]
    if tag in _PROSE_TAGS and "```" in text:
        return [body.encode("utf-8") for body in code_bodies(text)]
    return _NO_CODE


def _message_part(blocks: list[_EncodedBlock], source: str | None) -> bytes:
    """The text a message-scoped source reads of one message's blocks."""
    if len(blocks) == 1 and (source is None or source == blocks[0][0]):
        return blocks[0][1]  # the one block's text: the usual tool message
    if source is None or source == "any":
        return b"\n".join([data for _, data, _ in blocks])
    if source == "codeText":
        return b"\n".join([body for _, _, codes in blocks for body in codes])
    return b"\n".join([data for tag, data, _ in blocks if tag == source])


# The plain source each block is read by: text blocks by their message's role.
_TEXT_TAGS = {"assistant": "assistantText", "user": "userText", "system": "system", "tool": "tool"}
_KIND_TAGS: dict[str, str | None] = {
    "text": None,
    "thinking": "thinkingText",
    "tool_call": "toolCalls",
    "tool_result": "toolResults",
}
_PROSE_TAGS = frozenset(["assistantText", "userText", "system", "tool", "thinkingText"])


def message_text(message: Message, source: str | None = None) -> str:
    """The text of one message for a message-scoped signal (docs/spec.md §3.1)."""
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
