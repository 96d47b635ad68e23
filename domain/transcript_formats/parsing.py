"""What every transcript format shares: the parser protocol, its result, located errors and a
small typed reader over decoded JSON.

A parser is fed the agent's output one line at a time (so line-oriented formats can report
each message as soon as it is complete) and finished once the output ends. Whole-document
formats simply buffer their lines and parse on `finish`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol

from pydantic import ValidationError

from domain.errors import InvalidInput
from domain.problems import problems_from_pydantic
from domain.transcripts import (
    Message,
    RecordedStats,
    TextBlock,
    Transcript,
)


class TranscriptFormatError(InvalidInput):
    """Agent output that does not parse in its format; the message names the line and field."""


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """An agent's output as a tpc transcript (task and environment ids left unset).

    `transcript.termination_reason` is set when the format says how the agent stopped (e.g.
    Claude Code's `error_max_turns` -> `max_steps`); `error` is the agent's own report that
    it failed (a provider error, a crash), which makes the run `errored`.
    """

    transcript: Transcript
    error: str | None = None


class OutputParser(Protocol):
    """Turns one agent's output into a transcript, line by line."""

    def feed(self, line: str) -> list[Message]:
        """Take one line of output (without its newline); return the messages it completed."""
        ...

    def finish(self) -> ParsedOutput:
        """The whole transcript; messages not yet returned by `feed` are included."""
        ...


@dataclass(frozen=True, slots=True)
class Node:
    """A decoded JSON value and where it sits, so every shape error names its field.

    `where` names the document or line (`claude-stream-json line 4`), `loc` the path inside it
    (`message.content[2].input`).
    """

    value: Any
    where: str
    loc: str = ""

    def fail(self, problem: str) -> NoReturn:
        field = f" `{self.loc}`" if self.loc else ""
        raise TranscriptFormatError(f"{self.where}:{field} {problem}", ((self.loc, problem),))

    def get(self, key: str) -> Node:
        """The member `key` of this object (its value is None when absent)."""
        data = self.obj()
        return Node(data.get(key), self.where, f"{self.loc}.{key}" if self.loc else key)

    def path(self, *keys: str) -> Node:
        """The member at `keys`, None when any object on the way is absent or null (optional
        nested records); a non-object on the way still fails."""
        node = self
        for key in keys:
            if node.value is None:
                return Node(None, self.where, f"{node.loc}.{key}" if node.loc else key)
            node = node.get(key)
        return node

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            self.fail(f"expected an object, got {_kind(self.value)}")
        return self.value

    def items(self) -> Iterator[Node]:
        if not isinstance(self.value, list):
            self.fail(f"expected an array, got {_kind(self.value)}")
        for index, value in enumerate(self.value):
            yield Node(value, self.where, f"{self.loc}[{index}]")

    def text(self) -> str:
        if not isinstance(self.value, str):
            self.fail(f"expected a string, got {_kind(self.value)}")
        return self.value

    def opt_text(self) -> str | None:
        return None if self.value is None else self.text()

    def opt_number(self) -> float | None:
        if self.value is None:
            return None
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            self.fail(f"expected a number, got {_kind(self.value)}")
        return float(self.value)

    def opt_int(self) -> int | None:
        number = self.opt_number()
        return None if number is None else int(number)

    def flag(self) -> bool:
        if self.value is None:
            return False
        if not isinstance(self.value, bool):
            self.fail(f"expected true or false, got {_kind(self.value)}")
        return self.value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def decode_json(text: str, where: str) -> Node:
    """Decode one JSON document; a syntax error names its line and column."""
    try:
        return Node(json.loads(text), where)
    except ValueError as error:
        line = getattr(error, "lineno", None)
        at = f" (line {line}, column {getattr(error, 'colno', '?')})" if line else ""
        message = f"not valid JSON{at}: {getattr(error, 'msg', error)}"
        raise TranscriptFormatError(f"{where}: {message}", (("", message),)) from None


def message(role: str, blocks: Sequence[Any], node: Node | None = None) -> Message:
    """A validated transcript message (a string is a text block); a block that does not
    validate names its field."""
    content = [{"type": "text", "text": b} if isinstance(b, str) else b for b in blocks]
    try:
        return Message.model_validate({"role": role, "content": content})
    except ValidationError as error:
        problem = problems_from_pydantic(error)[0]
        (node or Node(None, "agent output")).fail(f"{problem}")


def stats(**values: Any) -> RecordedStats:
    """Recorded stats with unknown values left out (None is 'unknown', not a value)."""
    return RecordedStats.model_validate({k: v for k, v in values.items() if v is not None})


def with_prompt(messages: list[Message], prompt: str | None) -> list[Message]:
    """The messages with the task's prompt as the first user message, when the agent's output
    does not contain any user message itself (agent CLIs do not echo the prompt)."""
    if prompt is None or any(m.role == "user" for m in messages):
        return messages
    leading = 0
    while leading < len(messages) and messages[leading].role == "system":
        leading += 1
    user = Message(role="user", content=[TextBlock(text=prompt)])
    return [*messages[:leading], user, *messages[leading:]]


class DocumentParser:
    """Base of the whole-document formats: lines are buffered and parsed on `finish`."""

    name = "document"

    def __init__(self, prompt: str | None = None) -> None:
        self._prompt = prompt
        self._lines: list[str] = []

    def feed(self, line: str) -> list[Message]:
        self._lines.append(line)
        return []

    def finish(self) -> ParsedOutput:
        text = "\n".join(self._lines)
        if not text.strip():
            raise TranscriptFormatError(
                f"{self.name}: the agent printed no transcript (empty output)",
                (("", "empty output"),),
            )
        parsed = self.parse(decode_json(text, self.name))
        messages = with_prompt(list(parsed.transcript.messages), self._prompt)
        transcript = parsed.transcript.model_copy(update={"messages": messages})
        return ParsedOutput(transcript, parsed.error)

    def parse(self, document: Node) -> ParsedOutput:
        raise NotImplementedError


def json_line(line: str, where: str) -> Node | None:
    """One JSONL line as an object, None for a blank line."""
    if not line.strip():
        return None
    node = decode_json(line, where)
    node.obj()
    return node


@dataclass(frozen=True, slots=True)
class Sample:
    """One transcript of a log file that may hold many (an Inspect log's samples)."""

    sample: str | None  # which one (None when the file holds one)
    parsed: ParsedOutput
    metadata: dict[str, Any]


def parse_lines(parser: OutputParser, text: str) -> ParsedOutput:
    """Feed every line of `text`, then finish."""
    for line in text.splitlines():
        parser.feed(line)
    return parser.finish()


def decode_text(data: bytes, where: str) -> str:
    """A log file's bytes as UTF-8 text (a byte-order mark is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        problem = f"not UTF-8 text (byte {error.start}): is this the right file?"
        raise TranscriptFormatError(f"{where}: {problem}", (("", problem),)) from None


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as logs write it (`Z` for UTC); None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
