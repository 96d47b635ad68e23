"""Commands that work on signal configs and transcripts locally: no server, no credentials."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from api.cli.exit_codes import ExitCode
from api.cli.output import current_output, plural
from api.cli.signals_view import render_signals_report
from api.cli.transcript_commands import FileProblems, from_option, read_log_files
from domain.errors import InvalidInput, UnreadableDocument
from domain.signals.config import json_schema
from domain.signals.extraction import Extractor
from domain.signals.report import ExtractedRun, extract_run, signals_report
from domain.signals.validation import (
    SignalConfigSyntaxError,
    ValidationReport,
    load_signal_config,
)
from domain.transcripts import InvalidTranscript, Transcript, parse_transcript
from infra.llm.prices import MODEL_PRICES


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableDocument(f"cannot read {path}: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


def load_config_file(path: Path, text: str | None = None) -> ValidationReport:
    """Read (unless given its text) and validate a config file; unreadable or non-YAML files
    raise (exit 2) with the path in the message."""
    text = read_text(path) if text is None else text
    try:
        return load_signal_config(text)
    except SignalConfigSyntaxError as error:
        raise SignalConfigSyntaxError(f"{path}: {error}") from None


@click.command("validate-signal-config")
@click.argument("file", type=click.Path(path_type=Path))
def validate_signal_config(file: Path) -> None:
    """Check a signal config locally and report every problem with its location.

    Exit 0 when valid (warnings on stderr), 1 when invalid, 2 when the file cannot be read
    or is not YAML. Needs no server and no credentials: use it in CI or a pre-commit hook.

    Example: tpc sim experiment validate-signal-config signals.yaml
    """
    output = current_output()
    try:
        report = load_config_file(file)
    except UnreadableDocument as error:
        if output.is_json:
            output.emit(
                {
                    "valid": False,
                    "errors": [{"loc": "", "message": str(error)}],
                    "warnings": [],
                    "config_hash": None,
                },
                lambda _: None,
            )
        raise
    for warning in report.warnings:
        output.warn(f"{file}: {warning}")
    if output.is_json:
        output.emit(report.to_json(), lambda _: None)
    elif report.valid:
        assert report.config is not None
        signals = plural(len(report.config.signals), "signal")
        aggregates = plural(len(report.config.aggregates), "aggregate")
        output.console.print(
            f"[green]✓[/] {escape(str(file))} is valid: {signals}, {aggregates} "
            f"({report.content_hash})"
        )
    else:
        for problem in report.errors:
            output.errors.print(f"[red]✗[/] {escape(str(file))}: {escape(str(problem))}")
        output.errors.print(f"{plural(len(report.errors), 'problem')} found")
    if not report.valid:
        sys.exit(ExitCode.FAILED)


@click.group("signals")
def signals_group() -> None:
    """Signals: extract them from transcripts offline, and the config's JSON Schema."""


@signals_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of signal configs, for editor completion and validation.

    Example: tpc sim signals schema > signal-config.schema.json
    """
    click.echo(json.dumps(json_schema(), indent=2))


@signals_group.command("extract")
@click.option(
    "--signal-config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The YAML signal config to apply.",
)
@click.option("--evidence", is_flag=True, help="Also print every value's evidence.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Skip transcripts that do not parse (with a warning) instead of failing.",
)
@from_option(default="tpc")
@click.argument("transcripts", nargs=-1, required=True, type=click.Path(path_type=Path))
def extract(
    config_path: Path,
    evidence: bool,
    skip_invalid: bool,
    source_format: str,
    transcripts: tuple[Path, ...],
) -> None:
    """Extract signals from transcript files and aggregate them, with no server.

    Runs are grouped by each transcript's task_id and environment_id. llm signals need a
    judge, so offline they are reported missing with the reason. With --from, the files are
    agent logs of that format (or auto-detected); a file holding many transcripts (an Inspect
    log) gives one run per transcript, named FILE#SAMPLE.

    Example: tpc sim signals extract --signal-config signals.yaml runs/*.json
    """
    output = current_output()
    report = load_config_file(config_path)
    for warning in report.warnings:
        output.warn(f"{config_path}: {warning}")
    config = report.require_valid()
    if source_format == "tpc":
        parsed = [(str(path), t) for path, t in _parse_transcripts(transcripts, skip_invalid)]
    else:
        parsed = _read_logs(transcripts, source_format, skip_invalid)
    extractor = Extractor(config)
    runs: list[ExtractedRun] = [
        extract_run(extractor, {"transcript": name}, transcript, MODEL_PRICES)
        for name, transcript in output.track(parsed, "Extracting", total=len(parsed))
    ]
    document = signals_report(config, report.content_hash, runs)
    output.emit(document, lambda console: render_signals_report(console, document, evidence))


def _read_logs(
    paths: tuple[Path, ...], source_format: str, skip_invalid: bool
) -> list[tuple[str, Transcript]]:
    """Agent logs of `source_format`, each transcript named by its file (and sample)."""
    logged, problems = read_log_files(paths, source_format)
    _settle(problems, len(paths), skip_invalid)
    if not logged:
        raise InvalidInput("no valid transcripts to extract from")
    return [
        (item.file if item.sample is None else f"{item.file}#{item.sample}", item.parsed.transcript)
        for item in current_output().track(logged, "Reading transcripts", total=len(logged))
    ]


def _settle(problems: FileProblems, total: int, skip_invalid: bool) -> None:
    """Skip the bad files with a warning, or report them all and stop: nothing half done."""
    if problems and skip_invalid:
        problems.warn_skipped()
    elif problems:
        raise problems.report(
            f"{len(problems)} of {plural(total, 'transcript')} could not be read "
            "(fix them, or pass --skip-invalid to extract from the rest)"
        )


def _parse_transcripts(
    paths: tuple[Path, ...], skip_invalid: bool
) -> list[tuple[Path, Transcript]]:
    """Parse every file; report all bad ones together (or skip them) so nothing is half done."""
    output = current_output()
    parsed: list[tuple[Path, Transcript]] = []
    problems = FileProblems()
    for path in output.track(paths, "Reading transcripts", total=len(paths)):
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.unreadable.append(f"cannot read {path}: {_reason(error)}")
            continue
        try:
            parsed.append((path, parse_transcript(data, str(path))))
        except InvalidTranscript as error:
            problems.invalid.append(str(error))
    _settle(problems, len(paths), skip_invalid)
    if not parsed:
        raise InvalidInput("no valid transcripts to extract from")
    return parsed
