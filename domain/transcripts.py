"""The canonical transcript, "tpc transcript v1" (docs/spec.md §3): its model and its parser.

A transcript is also the import/export format, so parsing is strict about shape (every problem
is reported with the message and field it concerns) but lenient about extra keys, which other
tools' exports often carry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticSerializationError, from_json

from domain.errors import InvalidInput
from domain.problems import problems_from_pydantic
from domain.safe_text import clean_value
from domain.vocabulary import RunStatus, TerminationReason

Role = Literal["system", "user", "assistant", "tool"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextBlock(_Part):
    type: Literal["text"] = "text"
    text: str


class ThinkingBlock(_Part):
    type: Literal["thinking"] = "thinking"
    thinking: str


class ToolCallBlock(_Part):
    type: Literal["tool_call"] = "tool_call"
    id: str | None = None
    name: str
    input: Any = Field(default_factory=dict)


class ToolResultBlock(_Part):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str | None = None
    content: str = ""
    is_error: bool = False

    @field_validator("content", mode="before")
    @classmethod
    def _join_text_parts(cls, value: Any) -> Any:
        # Providers allow a tool result to be a list of text blocks; the canonical form is text.
        if isinstance(value, list):
            texts = [p.get("text", "") if isinstance(p, dict) else p for p in value]
            if all(isinstance(t, str) for t in texts):
                return "\n".join(texts)
        return value


Block = Annotated[
    TextBlock | ThinkingBlock | ToolCallBlock | ToolResultBlock, Field(discriminator="type")
]


class Message(_Part):
    role: Role
    content: list[Block]

    @field_validator("content", mode="before")
    @classmethod
    def _string_is_one_text_block(cls, value: Any) -> Any:
        return [{"type": "text", "text": value}] if isinstance(value, str) else value


class RecordedStats(_Part):
    """Stats as a runner recorded them; anything missing is derived later (domain.stats)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    duration: float | None = None
    token_in: int | None = None
    token_out: int | None = None
    cost: float | None = None
    model: str | None = None


class Transcript(_Part):
    """A run's record: who ran what, how it ended, and every message in order."""

    version: Literal[1] = 1
    task_id: str | None = None
    environment_id: str | None = None
    status: RunStatus | None = None
    termination_reason: TerminationReason | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    stats: RecordedStats = Field(default_factory=RecordedStats)
    final_answer: str | None = None
    messages: list[Message]

    def actions(self) -> list[Action]:
        """Each tool call paired with its result (matched by id), in the order of the calls."""
        results = {
            block.tool_call_id: block
            for message in self.messages
            for block in message.content
            if isinstance(block, ToolResultBlock)
        }
        actions = []
        for index, message in enumerate(self.messages):
            for block in message.content:
                if isinstance(block, ToolCallBlock):
                    result = results.get(block.id)
                    actions.append(
                        Action(
                            event=index,
                            name=block.name,
                            input=block.input,
                            result=result.content if result else None,
                            is_error=result.is_error if result else False,
                        )
                    )
        return actions


class Action(BaseModel):
    """A tool call and what it returned: `event` is the index of the message that made it;
    `result` is None when no result answered it."""

    model_config = ConfigDict(frozen=True)

    event: int
    name: str
    input: Any
    result: str | None
    is_error: bool


class InvalidTranscript(InvalidInput):
    """A transcript that does not parse; the message names the document, message and field."""


def parse_transcript(document: str | bytes, name: str = "transcript") -> Transcript:
    """Parse a JSON transcript, raising `InvalidTranscript` with every located problem."""
    try:
        # Decoding first and validating the objects is cheaper than validating JSON (which
        # builds pydantic-core's own tree of the document before the Python objects) and
        # accepts the same documents: JSON gives only dicts, lists, strings, numbers, booleans
        # and null, which both modes read alike (a test compares them).
        return Transcript.model_validate(from_json(document))
    except ValueError:  # not JSON, or not a transcript: the JSON mode words the problems
        pass
    try:
        return Transcript.model_validate_json(document)
    except ValidationError as error:
        raise _invalid(error, name) from None


def transcript_from_object(data: Any, name: str = "transcript") -> Transcript:
    """Validate an already-decoded transcript object (e.g. one embedded in an environment)."""
    try:
        return Transcript.model_validate(data)
    except ValidationError as error:
        raise _invalid(error, name) from None


def storable_transcript(transcript: Transcript) -> tuple[Transcript, bytes]:
    """The transcript as it is stored, with its JSON document. What an agent printed is data,
    not a request: a NUL character or a lone surrogate (which no store can keep, and a lone
    surrogate cannot even be written as JSON) is replaced by U+FFFD rather than losing the run.
    A clean transcript (the usual case) is returned as it is, dumped once."""
    try:
        document = transcript.model_dump_json(exclude_none=True)
    except PydanticSerializationError:  # a lone surrogate has no UTF-8 encoding
        document = None
    # JSON always escapes a NUL; a literal backslash before `u0000` only costs a clean copy.
    if document is not None and "\\u0000" not in document:
        return transcript, document.encode()
    cleaned = Transcript.model_validate(clean_value(transcript.model_dump(exclude_none=True)))
    return cleaned, cleaned.model_dump_json(exclude_none=True).encode()


def _invalid(error: ValidationError, name: str) -> InvalidTranscript:
    problems = problems_from_pydantic(error)
    lines = "; ".join(str(p) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return InvalidTranscript(
        f"{name}: not a valid tpc transcript: {lines}{more}",
        tuple((p.loc, p.message) for p in problems),
    )
