"""Agent transcript formats (SPEC §6): an agent CLI's output -> a tpc transcript.

Pure: parsers take text and return values, with errors that name the line and field. Each
format lives in its own module; `parser_for` picks one by the name an environment gives in
`agent.transcript_format`. `files` reads recorded log files (those formats, and the ones only
found in files: Claude Code and Codex sessions, Inspect logs, …) for convert, extract and import.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.transcript_formats.anthropic_messages import AnthropicMessagesParser
from domain.transcript_formats.claude_stream_json import ClaudeStreamJsonParser
from domain.transcript_formats.codex_jsonl import CodexJsonlParser
from domain.transcript_formats.openai_messages import OpenAIMessagesParser
from domain.transcript_formats.parsing import OutputParser, ParsedOutput, TranscriptFormatError
from domain.transcript_formats.tpc import TpcParser

__all__ = [
    "FORMATS",
    "LINE_FORMATS",
    "OutputParser",
    "ParsedOutput",
    "TranscriptFormatError",
    "parse_output",
    "parser_for",
]

FORMATS: dict[str, Callable[[str | None], OutputParser]] = {
    "tpc": TpcParser,
    "openai-messages": OpenAIMessagesParser,
    "anthropic-messages": AnthropicMessagesParser,
    "claude-stream-json": ClaudeStreamJsonParser,
    "codex-jsonl": CodexJsonlParser,
}
# Formats whose messages are complete line by line (worth streaming to live logs).
LINE_FORMATS = frozenset({"claude-stream-json", "codex-jsonl"})


def parser_for(name: str, prompt: str | None = None) -> OutputParser:
    """A fresh parser for one agent's output. `prompt` (the task's) becomes the first user
    message when the output has none, as agent CLIs do not echo it."""
    try:
        factory = FORMATS[name]
    except KeyError:
        problem = f"unknown transcript format {name!r} (expected one of {', '.join(FORMATS)})"
        raise TranscriptFormatError(problem, (("transcript_format", problem),)) from None
    return factory(prompt)


def parse_output(name: str, text: str, prompt: str | None = None) -> ParsedOutput:
    """Parse a whole output at once (tests, imports): every line fed, then finished."""
    parser = parser_for(name, prompt)
    for line in text.splitlines():
        parser.feed(line)
    return parser.finish()
