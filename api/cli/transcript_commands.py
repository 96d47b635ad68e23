"""`tpc sim transcript`: recorded agent logs (Claude Code, Codex, Inspect, message lists) as tpc
transcripts, with no server. The `--from` option and the file reading here are shared by
`signals extract` and `env create --replay-dir`, so every command reads the same inputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from api.cli.output import current_output
from domain.errors import DomainError, InvalidInput, UnreadableDocument
from domain.transcript_formats import TranscriptFormatError
from domain.transcript_formats.files import AUTO, LOG_FORMATS, LoggedTranscript, read_logs

F = TypeVar("F", bound=Callable[..., Any])


def from_option(default: str = AUTO) -> Callable[[F], F]:
    """`--from FORMAT`: the format of the input files (`auto` detects each file's)."""
    return click.option(
        "--from",
        "source_format",
        type=click.Choice(LOG_FORMATS),
        default=default,
        show_default=True,
        help="The format of the input files; auto detects each file's and says what it found "
        "(see docs/formats.md).",
    )


def read_log_file(path: Path, source_format: str) -> list[LoggedTranscript]:
    """Every transcript in one file (`-`: standard input); an unreadable file raises
    `UnreadableDocument`, a wrong-format one `TranscriptFormatError`, each naming it."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as error:
        problem = f"cannot read {path}: {error.strerror or error}"
        raise UnreadableDocument(problem, (("", problem),)) from None
    logged = read_logs(str(path), data, source_format)
    if source_format == AUTO:
        noun = "transcript" if len(logged) == 1 else "transcripts"
        current_output().errors.print(
            f"{path}: detected {logged[0].format} ({len(logged)} {noun})",
            markup=False,
            highlight=False,
        )
    return logged


@dataclass
class FileProblems:
    """What went wrong with the files of one command, all of them, so one pass fixes them all."""

    unreadable: list[str] = field(default_factory=list)  # missing or unreadable (exit 2)
    invalid: list[str] = field(default_factory=list)  # not of the format (exit 1)

    def __bool__(self) -> bool:
        return bool(self.unreadable or self.invalid)

    def report(self, summary: str) -> DomainError:
        """Print each problem on stderr; the error to raise, with the exit code it deserves."""
        for problem in self.unreadable + self.invalid:
            current_output().error(problem)
        return UnreadableDocument(summary) if self.unreadable else InvalidInput(summary)

    def warn_skipped(self) -> None:
        for problem in self.unreadable + self.invalid:
            current_output().warn(f"skipped {problem}")

    def __len__(self) -> int:
        return len(self.unreadable) + len(self.invalid)


def read_log_files(
    paths: tuple[Path, ...], source_format: str
) -> tuple[list[LoggedTranscript], FileProblems]:
    """Every transcript of every file, and the problems of the files that could not be read."""
    logged: list[LoggedTranscript] = []
    problems = FileProblems()
    for path in paths:
        try:
            logged.extend(read_log_file(path, source_format))
        except UnreadableDocument as error:
            problems.unreadable.append(str(error))
        except TranscriptFormatError as error:
            problems.invalid.append(str(error))
    return logged, problems


def transcript_document(item: LoggedTranscript) -> dict[str, Any]:
    """The transcript as tpc transcript v1 JSON (unknown values left out)."""
    document: dict[str, Any] = item.parsed.transcript.model_dump(mode="json", exclude_none=True)
    return document


@click.group("transcript")
def transcript_group() -> None:
    """Recorded agent logs as tpc transcripts, offline (docs/formats.md)."""


@transcript_group.command("convert")
@from_option()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def convert(source_format: str, files: tuple[Path, ...]) -> None:
    """Convert agent logs to tpc transcript v1 JSON on stdout.

    FILE `-` reads standard input (e.g. piped from `claude -p … --output-format stream-json`).
    One transcript prints as a JSON document, several (an Inspect log holds one per sample)
    as a JSON array of them. With --format json: an array of {"file", "sample", "format",
    "metadata", "transcript"}. A file that is not of the given format exits 1 naming the file,
    the line and what was expected; nothing is printed then.

    Example: tpc sim transcript convert --from claude-code-session ~/.claude/projects/*/*.jsonl
    """
    output = current_output()
    logged, problems = read_log_files(files, source_format)
    if problems:
        noun = "file" if len(files) == 1 else "files"
        raise problems.report(
            f"{len(problems)} of {len(files)} {noun} could not be converted (nothing was printed)"
        )
    if output.is_json:
        items = [
            {
                "file": item.file,
                "sample": item.sample,
                "format": item.format,
                "metadata": item.metadata,
                "transcript": transcript_document(item),
            }
            for item in logged
        ]
        click.echo(json.dumps(items, indent=2, ensure_ascii=False))
        return
    documents = [transcript_document(item) for item in logged]
    click.echo(
        json.dumps(documents[0] if len(documents) == 1 else documents, indent=2, ensure_ascii=False)
    )
