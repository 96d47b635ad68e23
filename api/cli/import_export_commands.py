"""`tpc sim experiment import` and `export`: recorded logs in as an iteration, an iteration's
runs out as a table (and its transcripts as tpc JSON).

Import reads and parses the files here (docs/formats.md), keys each transcript to a task and
an environment of the experiment (`domain.log_keys`), and posts them in one request; the
server records the iteration and runs them through the usual pipeline with no agent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from api.cli.client import ApiClient, ApiConflict, api_client, parse, segment
from api.cli.env_commands import LOG_SUFFIXES
from api.cli.experiment_commands import (
    experiment_path,
    iteration_path,
    poll_interval,
    watch_iteration,
)
from api.cli.output import current_output
from api.cli.results_view import render_iteration_status
from api.cli.run_table import EXPORT_FORMATS, run_rows, write_table
from api.cli.transcript_commands import from_option, read_log_files
from domain.errors import InvalidInput
from domain.log_keys import SYNTAX, KeyExpression, LogPlace, parse_key
from domain.transcript_formats.files import LoggedTranscript
from domain.transcripts import Message, TextBlock
from projections.read_models import ExperimentView, IterationStatus, Page, Results, RunRow

KEY_HELP = (
    f"Which {{what}} each transcript belongs to: {SYNTAX}; matched to the id or exact name of "
    "one attached to the experiment (default: its only {what}). See docs/cli.md."
)


# -- import -----------------------------------------------------------------------------------


@click.command("import")
@click.argument("exp_id", metavar="EXP")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@from_option()
@click.option("--task-key", help=KEY_HELP.format(what="task"))
@click.option("--env-key", help=KEY_HELP.format(what="environment"))
@click.option("--wait", is_flag=True, help="Wait until the iteration completes.")
def import_logs(
    exp_id: str,
    files: tuple[Path, ...],
    source_format: str,
    task_key: str | None,
    env_key: str | None,
    wait: bool,
) -> None:
    """Import recorded agent logs as the experiment's next iteration: one run per transcript.

    FILES are log files or folders (their *.json, *.jsonl and *.eval files at any depth, in
    name order). No agent runs: each run keeps
    its transcript's recorded outcome, and its signals, aggregates, clusters and results are
    made exactly as for a run iteration. Nothing is recorded if any file or key is wrong.

    Example: tpc sim experiment import exp_789 logs/ --from inspect-log
    --task-key metadata.sample_id --env-key model
    """
    if not files:
        raise click.UsageError("give the log files (or folders) to import")
    task_expression = parse_key(task_key, "--task-key") if task_key is not None else None
    env_expression = parse_key(env_key, "--env-key") if env_key is not None else None
    paths = _log_files(files)
    logs, problems = read_log_files(tuple(paths), source_format)
    if problems:
        raise problems.report(
            f"{len(problems)} of {len(paths)} files could not be read: nothing was imported"
        )
    if not logs:
        raise InvalidInput(
            f"no transcripts found in {', '.join(str(f) for f in files)}",
            (("files", "hold no transcript"),),
        )
    client = api_client()
    if task_expression is None or env_expression is None:
        _, experiment = client.get_model(experiment_path(exp_id), ExperimentView)
        task_expression = task_expression or _only(
            experiment.id, experiment.task_ids, "task", "--task-key"
        )
        env_expression = env_expression or _only(
            experiment.id, experiment.env_ids, "environment", "--env-key"
        )
    formats = sorted({log.format for log in logs})
    if len(formats) > 1:
        raise InvalidInput(
            f"the files are of several formats ({', '.join(formats)}): import each format "
            "in its own iteration",
            (("from", "one format per import"),),
        )
    body = {
        "format": formats[0],
        "runs": [_posted(log, task_expression, env_expression) for log in logs],
    }
    document = client.post(f"{experiment_path(exp_id)}/imports", body)
    status = parse(IterationStatus, document)
    for warning in status.warnings or []:
        current_output().warn(warning)
    if wait:
        document, status = watch_iteration(client, exp_id, status.iteration, poll_interval())
    current_output().emit(document, lambda console: _render_imported(console, status, wait))


def _log_files(paths: tuple[Path, ...]) -> list[Path]:
    """The files named, and the logs under the folders named, at any depth (Codex keeps its
    sessions by date): *.json, *.jsonl and *.eval files, hidden ones skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix in LOG_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or folder", (("files", f"{path} not found"),))
    return found


def _only(exp_id: str, attached: list[str], what: str, option: str) -> KeyExpression:
    """The key that names the experiment's only task (environment), else a usage error."""
    if len(attached) == 1:
        return parse_key(f"={attached[0]}", option)
    raise click.UsageError(
        f"{exp_id} has {len(attached)} {what}s"
        f"{' (' + ', '.join(attached) + ')' if attached else ''}: say which each transcript "
        f"belongs to with {option} (e.g. {option} file-stem)"
    )


def _posted(log: LoggedTranscript, task: KeyExpression, environment: KeyExpression) -> Any:
    transcript = log.parsed.transcript
    if log.parsed.error is not None:
        # The agent reported its own failure: the run is errored, with the agent's words as
        # its last message, as a command agent's run is (infra/runners/command.py).
        note = Message(role="system", content=[TextBlock(text=f"[agent error] {log.parsed.error}")])
        transcript = transcript.model_copy(
            update={
                "messages": [*transcript.messages, note],
                "status": "errored",
                "termination_reason": "error",
            }
        )
    place = LogPlace(log.file, log.sample, transcript.stats.model, log.metadata)
    return {
        "task": task.key(place, "--task-key"),
        "environment": environment.key(place, "--env-key"),
        "transcript": json.loads(transcript.model_dump_json(exclude_none=True)),
        "file": log.file,
        **({"sample": log.sample} if log.sample is not None else {}),
    }


def _render_imported(console: Console, status: IterationStatus, waited: bool) -> None:
    exp = escape(status.experiment_id)
    imported = status.imported
    runs, files = (imported.runs, imported.files) if imported else (None, None)
    console.print(
        f"Iteration {status.iteration} of {exp} imported from {runs} transcripts "
        f"({escape(str(imported.format if imported else None))}, {files} files): "
        "no agent runs."
    )
    if waited:
        render_iteration_status(console, status)
        return
    console.print(
        f"[dim]Follow it: tpc sim experiment run status {exp} "
        f"--iteration {status.iteration} --watch[/]"
    )


# -- export -----------------------------------------------------------------------------------


@click.command("export")
@click.argument("exp_id", metavar="EXP")
@click.option(
    "--iteration",
    type=click.IntRange(min=1),
    default=None,
    help="Iteration number (default: the latest).",
)
@click.option(
    "--to",
    "to",
    type=click.Choice(EXPORT_FORMATS),
    default="jsonl",
    show_default=True,
    help="The table's format: one row per run (parquet needs pyarrow).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the table to FILE (default: stdout; required for parquet).",
)
@click.option(
    "--transcripts",
    "transcripts_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write each run's transcript (tpc transcript v1) to DIR/<run id>.json.",
)
def export(
    exp_id: str,
    iteration: int | None,
    to: str,
    output: Path | None,
    transcripts_dir: Path | None,
) -> None:
    """Export a completed iteration's runs, one row per run, with their stats and signals.

    Columns are stable (docs/results.md, "Exporting an iteration"): the run's fields,
    `stats.*`, then one `signal.<id>` column per signal. The table goes to stdout unless
    --output names a file.

    Example: tpc sim experiment export exp_789 --iteration 3 --to csv --output runs.csv
    """
    client = api_client()
    _, results = client.get_model(f"{iteration_path(exp_id, iteration)}/results", Results)
    number = results.iteration
    runs = parse(Page[RunRow], client.list_all(f"{iteration_path(exp_id, number)}/runs")).items
    summary = results.summary
    names, rows = run_rows(
        runs,
        {task["task_id"]: task["name"] for task in summary.get("tasks", [])},
        {env["environment_id"]: env["name"] for env in summary.get("environments", [])},
    )
    written = _write_transcripts(client, runs, transcripts_dir) if transcripts_dir else 0
    write_table(to, names, rows, output, sys.stdout)
    if output is None:
        return  # stdout holds the table: nothing else goes there
    document = {
        "experiment_id": exp_id,
        "iteration": number,
        "to": to,
        "output": str(output),
        "rows": len(rows),
        "columns": names,
        "transcripts": written,
    }

    def render(console: Console) -> None:
        console.print(
            f"Wrote {len(rows)} runs of {escape(exp_id)} iteration {number} to "
            f"{escape(str(output))} ({to}, {len(names)} columns)"
            + (f"; {written} transcripts to {escape(str(transcripts_dir))}" if written else "")
        )

    current_output().emit(document, render)


def _write_transcripts(client: ApiClient, runs: list[RunRow], folder: Path) -> int:
    """Each run's transcript as DIR/<run id>.json; runs without one (cancelled before they
    ran) have no file."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for run in current_output().track(runs, "transcripts", len(runs)):
        try:
            transcript = client.get(f"/v1/runs/{segment(run.id)}/transcript")
        except ApiConflict:  # it has none
            continue
        path = folder / f"{run.id}.json"
        path.write_text(json.dumps(transcript, indent=2, ensure_ascii=False) + "\n")
        written += 1
    return written


IMPORT_EXPORT_COMMANDS: tuple[click.Command, ...] = (import_logs, export)
