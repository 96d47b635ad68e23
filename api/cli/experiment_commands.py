"""`tpc sim experiment …`: build experiments, trigger and follow iterations, read results.

Each command parses its input, makes one request (or a few), and renders the server's JSON:
`--format json` prints that document unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from api.cli.client import ApiClient, api_client, parse, segment
from api.cli.exit_codes import ExitCode
from api.cli.inputs import id_list, paging_options, read_signal_config
from api.cli.listing import Member, list_command, membership_group
from api.cli.names import catalog_names
from api.cli.output import current_output, plural
from api.cli.results_view import (
    finished_runs,
    render_experiment,
    render_experiments,
    render_history,
    render_iteration_status,
    render_iterations,
    render_results,
    render_runs,
)
from api.cli.signals_view import render_signals_report
from domain.gate import Condition, GateResult, GateSyntaxError, evaluate, parse_condition
from domain.vocabulary import RUN_STATES
from projections.read_models import (
    AuditEvent,
    ExperimentView,
    IterationStatus,
    Page,
    Results,
    RunRow,
)

DEFAULT_POLL_INTERVAL_S = 5.0
_ITERATION = click.option(
    "--iteration",
    type=click.IntRange(min=1),
    default=None,
    help="Iteration number (default: the latest).",
)


def experiment_path(exp_id: str) -> str:
    return f"/v1/experiments/{segment(exp_id)}"


def iteration_path(exp_id: str, iteration: int | None) -> str:
    number = "latest" if iteration is None else str(iteration)
    return f"{experiment_path(exp_id)}/iterations/{segment(number)}"


def _emit_experiment(document: Any) -> None:
    experiment = parse(ExperimentView, document)
    current_output().emit(document, lambda console: render_experiment(console, experiment))


# -- definition -----------------------------------------------------------------------------


@click.command("create")
@click.option("--name", required=True, help="The experiment's name.")
@click.option("--task-ids", help="Comma-separated task ids to attach.")
@click.option("--env-ids", help="Comma-separated environment ids to attach.")
@click.option(
    "--signal-config",
    "config_path",
    type=click.Path(path_type=Path),
    help="A YAML signal config (validated locally before upload).",
)
@click.option(
    "--repeats", type=click.IntRange(min=1), default=None, help="Runs per task × environment."
)
def create(
    name: str,
    task_ids: str | None,
    env_ids: str | None,
    config_path: Path | None,
    repeats: int | None,
) -> None:
    """Create an experiment, optionally with its tasks, environments and signal config.

    Example: tpc sim experiment create --name Onboarding --task-ids task_a,task_b --env-ids env_1
    """
    body: dict[str, Any] = {"name": name}
    for key, value in (("task_ids", id_list(task_ids)), ("env_ids", id_list(env_ids))):
        if value is not None:
            body[key] = value
    if repeats is not None:
        body["repeats"] = repeats
    if config_path is not None:
        body["signal_config"] = read_signal_config(config_path)
    _emit_experiment(api_client().post("/v1/experiments", body))


list_experiments = list_command(
    "/v1/experiments",
    render_experiments,
    help="""List the product's experiments, oldest first.

    Example: tpc sim experiment list
    """,
    item=ExperimentView,
)


@click.command("get")
@click.argument("exp_id", metavar="EXP")
@click.option(
    "--as-of",
    type=click.IntRange(min=0),
    default=None,
    metavar="POSITION",
    help="Show the experiment as it stood at this log position (see `history`).",
)
def get(exp_id: str, as_of: int | None) -> None:
    """Show an experiment: its tasks, environments, repeats, signal config and iterations.

    Example: tpc sim experiment get exp_789 --as-of 42
    """
    _emit_experiment(api_client().get(experiment_path(exp_id), {"as_of": as_of}))


@click.command("update")
@click.argument("exp_id", metavar="EXP")
@click.option(
    "--signal-config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Replace the signal config with this YAML file (validated locally first).",
)
@click.option("--clear-signal-config", is_flag=True, help="Remove the signal config.")
def update(exp_id: str, config_path: Path | None, clear_signal_config: bool) -> None:
    """Set or clear an experiment's signal config; iterations already triggered keep theirs.

    Example: tpc sim experiment update exp_789 --signal-config signals.yaml
    """
    if (config_path is None) == (not clear_signal_config):
        raise click.UsageError("give exactly one of --signal-config F and --clear-signal-config")
    text = None if config_path is None else read_signal_config(config_path)
    _emit_experiment(api_client().patch(experiment_path(exp_id), {"signal_config": text}))


task_membership = membership_group(
    Member("task", "a task", "tasks", "tasks", "task_id", "TASK", "task_abc"),
    experiment_path,
    lambda experiment: _emit_experiment(experiment),
)
env_membership = membership_group(
    Member("env", "an environment", "environments", "environments", "env_id", "ENV", "env_123"),
    experiment_path,
    lambda experiment: _emit_experiment(experiment),
)


# -- iterations -----------------------------------------------------------------------------


class _TriggerOrSubcommand(click.Group):
    """`run EXP` triggers an iteration; `run status EXP` and `run cancel EXP` are subcommands.

    A first argument that names no subcommand is an experiment id: it goes to the hidden
    `trigger` command, so both forms of the spec work with plain click parsing.
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["trigger", *args]
        return super().resolve_command(ctx, args)


class _TriggerCommand(click.Command):
    """Shows its usage as `… experiment run EXP`, the way people type it."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        path = ctx.parent.command_path if ctx.parent is not None else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))


@click.group(
    "run",
    cls=_TriggerOrSubcommand,
    subcommand_metavar="EXP | status EXP | cancel EXP",
)
def run_group() -> None:
    """Trigger an iteration (`run EXP`), follow it (`run status EXP --watch`) or cancel it.

    Example: tpc sim experiment run exp_789
    """


@run_group.command("trigger", cls=_TriggerCommand, hidden=True)
@click.argument("exp_id", metavar="EXP")
def trigger(exp_id: str) -> None:
    """Trigger the next iteration: one run per task × environment × repeat.

    Prints the new iteration's status; follow it with `run status EXP --watch`.

    Example: tpc sim experiment run exp_789
    """
    document = api_client().post(f"{experiment_path(exp_id)}/iterations")
    status = parse(IterationStatus, document)
    for warning in status.warnings or []:
        current_output().warn(warning)

    def render(console: Console) -> None:
        exp = escape(status.experiment_id)
        console.print(
            f"Triggered iteration {status.iteration} of {exp}: {plural(status.runs.total, 'run')}."
        )
        console.print(
            f"[dim]Follow it: tpc sim experiment run status {exp} "
            f"--iteration {status.iteration} --watch[/]"
        )

    current_output().emit(document, render)


@run_group.command("status")
@click.argument("exp_id", metavar="EXP")
@_ITERATION
@click.option(
    "--watch",
    is_flag=True,
    help="Poll every 5 s (TPC_POLL_INTERVAL) until the iteration is no longer running.",
)
def status(exp_id: str, iteration: int | None, watch: bool) -> None:
    """Show an iteration's progress: its status and run counts by status.

    With --watch, poll until the iteration completes or is cancelled (a progress bar on
    stderr for people; JSON prints only the last status).

    Example: tpc sim experiment run status exp_789 --watch
    """
    client = api_client()
    document, shown = (
        watch_iteration(client, exp_id, iteration, poll_interval())
        if watch
        else client.get_model(iteration_path(exp_id, iteration), IterationStatus)
    )
    current_output().emit(document, lambda console: render_iteration_status(console, shown))


def poll_interval() -> float:
    raw = os.environ.get("TPC_POLL_INTERVAL", "").strip()
    if not raw:
        return DEFAULT_POLL_INTERVAL_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise click.UsageError(f"TPC_POLL_INTERVAL must be a number of seconds (got {raw!r})")
    return seconds


def watch_iteration(
    client: ApiClient, exp_id: str, iteration: int | None, interval: float
) -> tuple[Any, IterationStatus]:
    """Poll until the iteration is no longer running; returns its last status (as received
    and as its read model)."""
    document, status = client.get_model(iteration_path(exp_id, iteration), IterationStatus)
    # Pin the number, so an iteration triggered meanwhile does not take over "latest".
    path = iteration_path(exp_id, status.iteration)
    description = f"{exp_id} iteration {status.iteration}"
    with current_output().progress(description, status.runs.total) as advance:
        shown = 0
        while True:
            done = finished_runs(status)
            for _ in range(max(0, done - shown)):
                advance()
            shown = max(shown, done)
            if status.status != "running":
                return document, status
            time.sleep(interval)
            document, status = client.get_model(path, IterationStatus)


@run_group.command("cancel")
@click.argument("exp_id", metavar="EXP")
@_ITERATION
def cancel(exp_id: str, iteration: int | None) -> None:
    """Cancel a running iteration: its unfinished runs end as cancelled.

    Example: tpc sim experiment run cancel exp_789 --iteration 3
    """
    document = api_client().post(f"{iteration_path(exp_id, iteration)}/cancel")
    status = parse(IterationStatus, document)
    current_output().emit(document, lambda console: render_iteration_status(console, status))


@click.command("rescore")
@click.argument("exp_id", metavar="EXP")
@click.option(
    "--iteration",
    type=click.IntRange(min=1),
    required=True,
    help="The completed (or cancelled) iteration whose transcripts to re-score.",
)
@click.option(
    "--signal-config",
    "config_path",
    type=click.Path(path_type=Path),
    help="A signal config for this re-score only (default: the experiment's current one).",
)
def rescore(exp_id: str, iteration: int, config_path: Path | None) -> None:
    """Re-score an iteration without running agents: a new iteration from its transcripts.

    The next iteration number gets one run per run of ITERATION, each keeping its status,
    termination reason, stats and transcript; the signals are extracted, judged and
    aggregated again under the given config (the experiment's config is not changed).

    Example: tpc sim experiment rescore exp_789 --iteration 3 --signal-config signals-v2.yaml
    """
    body = {} if config_path is None else {"signal_config": read_signal_config(config_path)}
    document = api_client().post(f"{iteration_path(exp_id, iteration)}/rescore", body)
    status = parse(IterationStatus, document)
    for warning in status.warnings or []:
        current_output().warn(warning)

    def render(console: Console) -> None:
        exp = escape(status.experiment_id)
        console.print(
            f"Iteration {status.iteration} of {exp} re-scores iteration "
            f"{status.rescore_of}: {plural(status.runs.total, 'run')}, no agent runs."
        )
        console.print(
            f"[dim]Follow it: tpc sim experiment run status {exp} "
            f"--iteration {status.iteration} --watch[/]"
        )

    current_output().emit(document, render)


@click.command("iterations")
@click.argument("exp_id", metavar="EXP")
def iterations(exp_id: str) -> None:
    """List every iteration of an experiment with its status and run counts.

    Example: tpc sim experiment iterations exp_789
    """
    document, page = api_client().get_model(
        f"{experiment_path(exp_id)}/iterations", Page[IterationStatus]
    )
    current_output().emit(document, lambda console: render_iterations(console, page))


@click.command("runs")
@click.argument("exp_id", metavar="EXP")
@_ITERATION
@click.option(
    "--status",
    "run_status",
    type=click.Choice(RUN_STATES),
    help="Only runs with this status.",
)
@paging_options
def runs(
    exp_id: str, iteration: int | None, run_status: str | None, limit: int, cursor: str | None
) -> None:
    """List an iteration's runs (ids for `tpc sim run get|logs|actions`).

    Example: tpc sim experiment runs exp_789 --status failed
    """
    client = api_client()
    document, page = client.get_model(
        f"{iteration_path(exp_id, iteration)}/runs",
        Page[RunRow],
        {"status": run_status, "limit": limit, "cursor": cursor},
    )
    current_output().emit(
        document, lambda console: render_runs(console, page, catalog_names(client))
    )


# -- results --------------------------------------------------------------------------------


def _fail_on_conditions(
    ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]
) -> list[Condition]:
    """Parse every --fail-on before any request: a malformed one is a usage error (exit 2)."""
    try:
        return [parse_condition(text) for text in texts]
    except GateSyntaxError as refused:
        raise click.BadParameter(str(refused), ctx=ctx, param=param) from None


_CONFIDENCE = click.option(
    "--confidence",
    type=click.Choice(["0.9", "0.95", "0.99"]),
    help="Confidence level of the intervals, default 0.95 (verdicts: alpha = 1 - confidence).",
)


@click.command("results")
@click.argument("exp_id", metavar="EXP")
@_ITERATION
@click.option(
    "--error-category",
    metavar="NAME",
    help="Show only this failure cluster, with all its evidence: its name or its cause key "
    '(e.g. "Authentication failures" or auth).',
)
@click.option(
    "--compare",
    type=click.IntRange(min=1),
    metavar="M",
    help="Also show per-task, per-environment and per-aggregate deltas to iteration M.",
)
@click.option(
    "--fail-on",
    "conditions",
    multiple=True,
    metavar="EXPR",
    callback=_fail_on_conditions,
    help="Exit 4 when this condition holds (repeatable): 'score < 0.8', "
    "'env:NAME.score < 0.7', 'task:NAME.score < 0.5', 'signal:ID.FN > 0.2', 'regression' "
    "(against --compare M, default the previous iteration), 'cluster:new'. See docs/ci.md.",
)
@_CONFIDENCE
@click.option(
    "--baseline",
    metavar="ENV",
    help="Compare every environment with this one (id or exact name; default: the best).",
)
def results(
    exp_id: str,
    iteration: int | None,
    error_category: str | None,
    compare: int | None,
    confidence: str | None,
    baseline: str | None,
    conditions: list[Condition],
) -> None:
    """Show an iteration's results: scores with intervals, environment comparison with
    significance, failure clusters.

    With --fail-on, also gate on them: exit 4 with one line per failed condition on stderr.

    Example: tpc sim experiment results exp_789 --iteration 3 --compare 2 --confidence 0.99
    """
    client = api_client()
    query = {
        "compare": compare,
        "error_category": error_category,
        "confidence": confidence,
        "baseline": baseline,
    }
    document = client.get(f"{iteration_path(exp_id, iteration)}/results", query)
    gate: GateResult | None = None
    if conditions:
        document, compared_clusters = _comparison_for_gate(
            client, exp_id, document, query, conditions
        )
        gate = evaluate(conditions, document, compared_clusters)
        document["gate"] = gate.to_json()
    shown = parse(Results, document)
    current_output().emit(
        document, lambda console: render_results(console, shown, document.get("gate"))
    )
    if gate is not None:
        _report_gate(gate)


def _comparison_for_gate(
    client: ApiClient,
    exp_id: str,
    document: dict[str, Any],
    query: dict[str, Any],
    conditions: list[Condition],
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """`regression` and `cluster:new` compare with --compare M, else with the previous
    iteration: its comparison block and its failure clusters (None: no earlier iteration)."""
    if not any(condition.needs_comparison for condition in conditions):
        return document, None
    number = int(document["iteration"])
    compare = query["compare"]
    against = compare if compare is not None else number - 1
    if against < 1:
        return document, None
    if compare is None:
        # Pinned to the number just read, so a newer iteration cannot slip in between.
        document = client.get(
            f"{iteration_path(exp_id, number)}/results", {**query, "compare": against}
        )
    previous = client.get(f"{iteration_path(exp_id, against)}/results")
    return document, list(previous.get("failure_clusters", []))


def _report_gate(gate: GateResult) -> None:
    """One stderr line per failed condition (and per condition that could not be judged);
    exit 4 when any condition holds."""
    # Plain lines (no markup, emoji codes or wrapping): CI logs and scripts read them.
    for check in gate.checks:
        if check.holds:
            click.echo(f"gate failed: {check.expr}: {check.detail}", err=True)
        elif check.value is None:
            click.echo(f"gate note: {check.expr}: {check.detail}", err=True)
    if not gate.passed:
        sys.exit(ExitCode.GATE_FAILED)


@click.command("signals")
@click.argument("exp_id", metavar="EXP")
@_ITERATION
@click.option("--evidence", is_flag=True, help="Also print every value's evidence.")
@_CONFIDENCE
def signals(exp_id: str, iteration: int | None, evidence: bool, confidence: str | None) -> None:
    """Show an iteration's signal aggregates (with intervals) and per-run signal values.

    Example: tpc sim experiment signals exp_789 --iteration 2 --evidence
    """
    client = api_client()
    document = client.get(
        f"{iteration_path(exp_id, iteration)}/signals", {"confidence": confidence}
    )

    def render(console: Console) -> None:
        names = catalog_names(client)
        render_signals_report(
            console, document, evidence, names.environments, task_names=names.tasks
        )

    current_output().emit(document, render)


@click.command("history")
@click.argument("exp_id", metavar="EXP")
def history(exp_id: str) -> None:
    """Show the audit trail: every event of the experiment, its iterations and runs.

    Oldest first, every page fetched; `get EXP --as-of POSITION` shows the experiment then.

    Example: tpc sim experiment history exp_789
    """
    client = api_client()
    document = client.list_all(f"{experiment_path(exp_id)}/history")
    page = parse(Page[AuditEvent], document)
    current_output().emit(
        document, lambda console: render_history(console, page, catalog_names(client))
    )


EXPERIMENT_COMMANDS: tuple[click.Command, ...] = (
    create,
    list_experiments,
    get,
    update,
    task_membership,
    env_membership,
    run_group,
    rescore,
    iterations,
    runs,
    results,
    signals,
    history,
)
