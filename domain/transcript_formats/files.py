"""Recorded agent logs as tpc transcripts: one file (its name and bytes) -> every transcript in it.

Pure: the caller reads the file; this module detects its format (`auto`) and parses it. A file
may hold many transcripts (an Inspect log holds one per sample and epoch, a tpc file may hold
an array); each comes back with the name of the file, which transcript it is, the format it
was read as and the metadata the format records beside the messages (scores, model, session).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.transcript_formats import FORMATS
from domain.transcript_formats.claude_code_session import read_claude_code_session
from domain.transcript_formats.codex_session import read_codex_session
from domain.transcript_formats.detection import detect
from domain.transcript_formats.inspect_log import read_inspect_log
from domain.transcript_formats.mini_swe_agent import MiniSweAgentParser
from domain.transcript_formats.openai_responses import OpenAIResponsesParser
from domain.transcript_formats.parsing import (
    OutputParser,
    ParsedOutput,
    Sample,
    TranscriptFormatError,
    decode_text,
    parse_lines,
)
from domain.transcript_formats.tpc import read_tpc_file

AUTO = "auto"


@dataclass(frozen=True, slots=True)
class LoggedTranscript:
    """One transcript read from a log file."""

    file: str  # the file name as given
    sample: str | None  # which transcript inside the file; None when the file holds one
    format: str  # the format it was read as (after detection)
    parsed: ParsedOutput  # the transcript, and the agent's own report of failure
    metadata: dict[str, Any]  # what the format records beside the messages (JSON-able)


FileReader = Callable[[str, bytes], list[Sample]]


def _one_transcript(name: str, factory: Callable[[str | None], OutputParser]) -> FileReader:
    def read(file_name: str, data: bytes) -> list[Sample]:
        return [Sample(None, parse_lines(factory(None), decode_text(data, name)), {})]

    return read


# Documents whose own top-level keys a tpc transcript would ignore (tpc accepts extra keys):
# read as tpc, their messages could pass while what the format records beside them is lost.
_WRAPPED_DOCUMENTS = frozenset({"mini-swe-agent", "inspect-log", "openai-responses"})


def _tpc_file(file_name: str, data: bytes) -> list[Sample]:
    """tpc files; another format's document that merely validates is refused."""
    samples = read_tpc_file(file_name, data)
    if len(samples) == 1:
        try:
            found = detect(file_name, data)
        except TranscriptFormatError:
            found = "tpc"
        if found in _WRAPPED_DOCUMENTS:
            problem = f"a {found} document, not a tpc transcript (which has `version: 1`)"
            raise TranscriptFormatError(f"tpc: {problem}", (("version", problem),))
    return samples


# Formats whose files hold many transcripts, or a shape of their own, read the whole file.
FILE_READERS: dict[str, FileReader] = {
    **{name: _one_transcript(name, factory) for name, factory in FORMATS.items()},
    "tpc": _tpc_file,
    "claude-code-session": read_claude_code_session,
    "codex-session": read_codex_session,
    "inspect-log": read_inspect_log,
    "openai-responses": _one_transcript("openai-responses", OpenAIResponsesParser),
    "mini-swe-agent": _one_transcript("mini-swe-agent", MiniSweAgentParser),
}
LOG_FORMATS: tuple[str, ...] = (AUTO, *FILE_READERS)


def detect_format(file_name: str, data: bytes) -> str:
    """The format of one file, told from its content; a file no format recognises raises
    `TranscriptFormatError` naming it and what was seen."""
    return detect(file_name, data)


def read_logs(file_name: str, data: bytes, format: str = AUTO) -> list[LoggedTranscript]:
    """Every transcript in one file, read as `format` (`auto` detects it).

    A file that is not of the given format raises `TranscriptFormatError` naming the file,
    the line (or field) and what the format expected there.
    """
    name = detect_format(file_name, data) if format == AUTO else format
    reader = FILE_READERS.get(name)
    if reader is None:
        known = ", ".join(LOG_FORMATS)
        problem = f"unknown format {name!r} (expected one of {known})"
        raise TranscriptFormatError(f"{file_name}: {problem}", (("format", problem),))
    try:
        samples = reader(file_name, data)
    except TranscriptFormatError as error:
        raise _in_file(file_name, error, _looks_like(file_name, data, name)) from None
    return [
        LoggedTranscript(file_name, item.sample, name, item.parsed, item.metadata)
        for item in samples
    ]


def _looks_like(file_name: str, data: bytes, tried: str) -> str:
    """A hint naming the format the file seems to be in, when it is another one."""
    try:
        found = detect(file_name, data)
    except TranscriptFormatError:
        return ""
    return f" (the file looks like {found}: try --from {found})" if found != tried else ""


def _in_file(file_name: str, error: TranscriptFormatError, hint: str) -> TranscriptFormatError:
    text = str(error)
    located = text if text.startswith(file_name) else f"{file_name}: {text}"
    return TranscriptFormatError(f"{located}{hint}", error.problems)
