"""`tpc sim env`: create, list and read environments on the server.

`env create --replay-dir DIR` embeds `DIR/*.json` as a replay agent's transcripts (docs/spec.md §6,
§8); every file is checked locally first, so a bad transcript fails before anything is sent.
With `--from FORMAT`, the folder holds agent logs that are converted first (docs/formats.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from api.cli.client import api_client, parse, segment
from api.cli.inputs import check_definition, read_definition_file
from api.cli.listing import folding, list_command, render_list
from api.cli.output import current_output, plural
from api.cli.results_view import compact, details_table, when
from api.cli.signals_view import format_value
from api.cli.transcript_commands import from_option, read_log_file, transcript_document
from api.http.bodies import EnvironmentCreate
from domain.errors import InvalidInput, UnreadableDocument
from domain.transcript_formats import TranscriptFormatError
from domain.transcripts import InvalidTranscript, transcript_from_object
from projections.read_models import EnvironmentView, Page


@click.group("env")
def env_group() -> None:
    """Environments: which agent runs the tasks, and within which limits.

    Example: tpc sim env list
    """


@env_group.command("create")
@click.option("--name", help="The environment's name (overrides the file's).")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    help="A YAML environment: name, agent {kind, …}, limits.",
)
@click.option(
    "--replay-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="A folder of tpc transcripts to replay: DIR/<task name or id>.json (object or array).",
)
@from_option(default="tpc")
def create(
    name: str | None, file: Path | None, replay_dir: Path | None, source_format: str
) -> None:
    """Create an environment from a YAML file, or a replay environment from a folder.

    With --replay-dir, each DIR/<key>.json holds one transcript or an array of them; the key
    (file stem) is a task name or id, and repeat i of that task replays item i mod n. With
    --from, the folder holds agent logs of that format (*.json, *.jsonl, *.eval; or
    auto-detected), converted here: every transcript of DIR/<key>.<ext> is replayed for <key>.

    Example: tpc sim env create --name recorded-sonnet --replay-dir runs/
    """
    if (file is None) == (replay_dir is None):
        raise click.UsageError("give exactly one of --file and --replay-dir")
    if file is not None:
        body = with_absolute_folders(read_definition_file(file, "environment"), file.parent)
    else:
        assert replay_dir is not None
        transcripts = (
            read_replay_dir(replay_dir)
            if source_format == "tpc"
            else read_replay_logs(replay_dir, source_format)
        )
        body = {"agent": {"kind": "replay", "transcripts": transcripts}}
    if name is not None:
        body["name"] = name
    check_definition(EnvironmentCreate, body, "environment", {"name": "--name"})
    document = api_client().post("/v1/environments", body)
    environment = parse(EnvironmentView, document)
    current_output().emit(document, lambda console: render_environment(console, environment))


# Agent options that name folders on the machine executing the runs.
FOLDER_OPTIONS = ("docs", "workspace")


def with_absolute_folders(body: dict[str, Any], base: Path) -> dict[str, Any]:
    """Folders in an environment file are relative to the file, as a user reads it; the
    server may run elsewhere (another working directory), so they are sent absolute."""
    agent = body.get("agent")
    if not isinstance(agent, dict):
        return body
    for option in FOLDER_OPTIONS:
        value = agent.get(option)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            agent[option] = str((base / value).resolve())
        elif isinstance(value, str) and value.startswith("~"):
            agent[option] = str(Path(value).expanduser())
    return body


def read_replay_dir(directory: Path) -> dict[str, Any]:
    """`{stem: transcript or [transcripts]}` from DIR/*.json, every file validated.

    Every bad file is reported together (exit 1), so one pass fixes them all.
    """
    paths = sorted(path for path in directory.glob("*.json") if path.is_file())
    if not paths:
        raise click.BadParameter(
            f"no *.json transcripts in {directory}", param_hint="'--replay-dir'"
        )
    transcripts: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    bad_files = 0
    for path in paths:
        transcripts[path.stem], found = _read_replay_file(path)
        problems.extend(("", message) for message in found)
        bad_files += bool(found)
    if problems:
        raise InvalidInput(
            f"{bad_files} of {len(paths)} files in {directory} are not valid tpc transcripts "
            "(nothing was sent)",
            tuple(problems),
        )
    return transcripts


LOG_SUFFIXES = (".json", ".jsonl", ".eval")


def read_replay_logs(directory: Path, source_format: str) -> dict[str, Any]:
    """`{key: [transcripts]}` from the agent logs in DIR, converted from `source_format`; the
    key is the file name without its suffixes (`fix-login.traj.json` -> `fix-login`)."""
    paths = sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.suffix in LOG_SUFFIXES and not path.name.startswith(".")
    )
    if not paths:
        raise click.BadParameter(
            f"no *.json, *.jsonl or *.eval logs in {directory}", param_hint="'--replay-dir'"
        )
    transcripts: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for path in paths:
        key = path.name.split(".", 1)[0] if path.name.endswith(".traj.json") else path.stem
        if key in transcripts:
            problems.append(("", f"{path}: a second file for the key {key!r}"))
            continue
        try:
            logged = read_log_file(path, source_format)
        except (TranscriptFormatError, UnreadableDocument) as error:
            problems.append(("", str(error)))
            continue
        transcripts[key] = [transcript_document(item) for item in logged]
    if problems:
        raise InvalidInput(
            f"{len(problems)} of {len(paths)} files in {directory} could not be read as "
            f"{source_format} (nothing was sent)",
            tuple(problems),
        )
    return transcripts


def _read_replay_file(path: Path) -> tuple[Any, list[str]]:
    """The file's decoded JSON and the problems of the transcripts in it (none: all valid)."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as error:
        return None, [f"cannot read {path}: {error.strerror or error}"]
    except ValueError as error:
        return None, [f"{path}: not valid JSON: {error}"]
    if isinstance(data, list) and not data:
        return data, [f"{path}: an empty array (give at least one transcript)"]
    problems: list[str] = []
    for i, item in enumerate(data if isinstance(data, list) else [data]):
        try:
            transcript_from_object(item, f"{path}[{i}]" if isinstance(data, list) else str(path))
        except InvalidTranscript as error:
            problems.append(str(error))
    return data, problems


env_group.add_command(
    list_command(
        "/v1/environments",
        lambda console, page: render_environments(console, page),
        help="""List the product's environments, oldest first.

    Example: tpc sim env list
    """,
        item=EnvironmentView,
    )
)


@env_group.command("get")
@click.argument("env_id")
def get(env_id: str) -> None:
    """Show one environment (a replay agent lists how many transcripts each key has).

    Example: tpc sim env get env_123
    """
    document, environment = api_client().get_model(
        f"/v1/environments/{segment(env_id)}", EnvironmentView
    )
    current_output().emit(document, lambda console: render_environment(console, environment))


def _agent_summary(agent: dict[str, Any]) -> str:
    kind = str(agent.get("kind", "?"))
    if kind == "replay":
        counts = agent.get("transcripts") or {}
        total = sum(v if isinstance(v, int) else 1 for v in counts.values())
        return f"replay: {plural(total, 'transcript')} for {plural(len(counts), 'key')}"
    model = agent.get("model")
    return f"{kind} ({model})" if model else kind


def _limits(limits: dict[str, Any]) -> str:
    parts = []
    if limits.get("timeout_s") is not None:
        parts.append(f"timeout {format_value(limits['timeout_s'])} s")
    if limits.get("max_cost_usd") is not None:
        parts.append(f"max cost ${format_value(limits['max_cost_usd'])}")
    known = {"timeout_s", "max_cost_usd"}
    parts.extend(f"{k} {compact(v)}" for k, v in limits.items() if k not in known)
    return ", ".join(parts) or "—"


def render_environment(console: Console, environment: EnvironmentView) -> None:
    agent = environment.agent.model_dump()
    rows = [
        ("id", escape(environment.id)),
        ("name", escape(environment.name)),
        ("agent", escape(_agent_summary(agent))),
    ]
    for key, value in agent.items():
        if key == "kind":
            continue
        if key == "transcripts" and isinstance(value, dict):
            listed = ", ".join(f"{k} ({v})" for k, v in value.items())
            rows.append(("  transcripts", escape(listed)))
        else:
            rows.append((f"  {key}", escape(compact(value))))
    if environment.limits:
        rows.append(("limits", escape(_limits(environment.limits))))
    rows.append(("created", escape(when(environment.created_at))))
    console.print(details_table(f"Environment {escape(environment.id)}", rows))


def render_environments(console: Console, page: Page[EnvironmentView]) -> None:
    render_list(
        console,
        page,
        title="Environments",
        empty="No environments yet: tpc sim env create --name NAME --file env.yaml",
        columns=folding("id", "name", "agent", "limits", "created"),
        row=lambda env: (
            escape(env.id),
            escape(env.name),
            escape(_agent_summary(env.agent.model_dump())),
            escape(_limits(env.limits)),
            escape(when(env.created_at)),
        ),
        more="tpc sim env list",
    )
