"""Drawing experiments, iteration status, results and the audit trail for people.

Every function takes an answer parsed into its read model (projections/read_models.py; the
results' summary and clusters are docs/results.md's documents) and prints rich tables;
`--format json` prints the document itself and never comes here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.listing import Column, render_list
from api.cli.names import Names
from api.cli.output import plural
from api.cli.signals_view import format_value, with_interval
from domain.vocabulary import RUN_STATES, TERMINAL
from projections.read_models import (
    AuditEvent,
    ExperimentView,
    ImportSummary,
    IterationStatus,
    Page,
    Results,
    RunRow,
)

_STATUS_STYLE = {
    "passed": "green",
    "completed": "green",
    "failed": "red",
    "errored": "red",
    "timed_out": "yellow",
    "cancelled": "dim",
    "running": "cyan",
    "queued": "dim",
}
# Evidence lines shown per failure cluster unless one cluster was asked for.
CLUSTER_EVIDENCE = 3
MAX_CLUSTER_RUN_IDS = 8
# Places (hosts, pages, commands…) listed per cluster, commonest first.
MAX_PLACES = 6


def styled(status: Any) -> str:
    """A status word in its colour (escaped)."""
    text = escape(str(status)) if status is not None else "—"
    style = _STATUS_STYLE.get(str(status))
    return f"[{style}]{text}[/]" if style else text


def pct(score: Any) -> str:
    return "—" if score is None else f"{float(score):.0%}"


def points(delta: Any) -> str:
    """A score difference in percentage points."""
    if delta is None:
        return "—"
    value = float(delta) * 100
    return "±0 pts" if round(value) == 0 else f"{value:+.0f} pts"


def rate(score: Any, ci: Any = None) -> str:
    """A score as `0.62 [0.48, 0.75]` (its interval when known)."""
    return "—" if score is None else with_interval(f"{float(score):.2f}", ci)


def marked(text: str, entry: Mapping[str, Any] | None) -> str:
    """A delta marked by its verdict: ▲/▼ significant, · not significant, nothing when it
    could not be tested (too few runs, or no test applies)."""
    if not entry:
        return text
    verdict, delta = entry.get("verdict"), entry.get("delta")
    if verdict == "significant" and isinstance(delta, int | float) and delta != 0:
        return f"{'▲' if delta > 0 else '▼'} {text}"
    if verdict == "not significant":
        return f"· {text}"
    if verdict == "too few runs":
        return f"{text} [dim](too few runs)[/]"
    return text


def delta_cell(entry: Mapping[str, Any] | None, show: Any = None) -> str:
    """A difference with its interval and its verdict's mark (rich markup)."""
    if not entry or entry.get("delta") is None:
        return "—"
    shown = show(entry["delta"]) if show else format_value(entry["delta"])
    return marked(escape(with_interval(shown, entry.get("ci"))), entry)


def seconds(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f} s"


def dollars(value: Any) -> str:
    return "—" if value is None else f"${float(value):.4f}"


def compact(value: Any, limit: int = 0) -> str:
    """A value on one line: strings as they are, anything else as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if not limit or len(text) <= limit else text[: limit - 1] + "…"


def when(timestamp: Any) -> str:
    """An ISO timestamp to the second, for tables (JSON keeps the full value)."""
    if not timestamp:
        return "—"
    text = str(timestamp)
    return text[:19].replace("T", " ") if len(text) >= 19 and text[10] == "T" else text


def details_table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A two-column `field  value` table; values are rich markup (escape them)."""
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def ids(values: Iterable[Any]) -> str:
    listed = [escape(str(v)) for v in values]
    return ", ".join(listed) if listed else "[dim]none[/]"


# -- experiments --------------------------------------------------------------------------------


def render_experiment(console: Console, experiment: ExperimentView) -> None:
    config = experiment.signal_config
    rows = [
        ("id", escape(experiment.id)),
        ("name", escape(experiment.name)),
        ("tasks", ids(experiment.task_ids)),
        ("environments", ids(experiment.env_ids)),
        ("repeats", str(experiment.repeats)),
        ("signal config", escape(config.hash) if config else "[dim]none[/]"),
        ("iterations", str(experiment.iterations)),
        ("created", escape(when(experiment.created_at))),
        ("version", str(experiment.version)),
    ]
    console.print(details_table(f"Experiment {escape(experiment.id)}", rows))


def render_experiments(console: Console, page: Page[ExperimentView]) -> None:
    render_list(
        console,
        page,
        title="Experiments",
        empty="No experiments yet: tpc sim experiment create --name NAME",
        columns=(
            Column("id", no_wrap=True),
            Column("name"),
            Column("tasks"),
            Column("environments"),
            Column("repeats", justify="right"),
            Column("iterations", justify="right"),
            Column("config"),
        ),
        row=_experiment_row,
        more="tpc sim experiment list",
    )


def _experiment_row(exp: ExperimentView) -> tuple[str, ...]:
    config = exp.signal_config
    return (
        escape(exp.id),
        escape(exp.name),
        str(len(exp.task_ids)),
        str(len(exp.env_ids)),
        str(exp.repeats),
        str(exp.iterations),
        escape(config.hash[:19]) if config else "[dim]—[/]",
    )


# -- iterations ---------------------------------------------------------------------------------


def finished_runs(status: IterationStatus) -> int:
    return sum(int(getattr(status.runs, key)) for key in TERMINAL)


def origin_note(document: IterationStatus | Results) -> str:
    """Where an iteration's runs came from when no agent ran for them ("" when they ran)."""
    imported: ImportSummary | None = document.imported
    if imported:
        return (
            f"imported from {imported.runs} recorded transcripts "
            f"({imported.format}, {imported.files} files): no agent ran"
        )
    if document.rescore_of:
        return f"re-score of iteration {document.rescore_of}: no agent ran"
    return ""


def render_iteration_status(console: Console, status: IterationStatus) -> None:
    console.print(
        f"[bold]{escape(status.experiment_id)}[/] iteration {status.iteration}: "
        f"{styled(status.status)} — {finished_runs(status)}/{plural(status.runs.total, 'run')} "
        "finished"
    )
    table = Table(show_header=True, box=None, padding=(0, 2))
    for key in RUN_STATES:
        table.add_column(styled(key), justify="right")
    table.add_row(*(str(getattr(status.runs, key)) for key in RUN_STATES))
    console.print(table)
    if origin_note(status):
        console.print(f"[dim]{escape(origin_note(status))}[/]")
    if status.config_hash:
        console.print(f"[dim]config {escape(status.config_hash)}[/]", soft_wrap=True)


# -- results ------------------------------------------------------------------------------------


def render_results(
    console: Console, results: Results, gate: Mapping[str, Any] | None = None
) -> None:
    """The results; `gate` is the `--fail-on` verdict (`GateResult.to_json()`) when asked."""
    summary = results.summary
    level = f" ({results.confidence:.0%} intervals)" if results.confidence else ""
    console.print(
        f"[bold]{escape(results.experiment_id)}[/] iteration {results.iteration} "
        f"({styled(results.status)}): overall score "
        f"[bold]{escape(rate(summary.get('score'), summary.get('score_ci')))}[/]{level}"
    )
    counts = summary.get("runs", {})
    total = sum(int(v) for v in counts.values())
    console.print(
        f"{plural(total, 'run')}: "
        + ", ".join(f"{styled(status)} {count}" for status, count in counts.items())
    )
    env_names = {
        e["environment_id"]: str(e.get("name") or e["environment_id"])
        for e in summary.get("environments", [])
    }
    if origin_note(results):
        console.print(f"[dim]{escape(origin_note(results))}[/]")
    _render_task_scores(console, summary.get("tasks", []), env_names)
    _render_environments(console, summary.get("environments", []))
    _render_stability(console, summary.get("stability"), env_names)
    _render_clusters(console, results.failure_clusters)
    _render_suggestions(console, results.suggestions)
    if results.compare:
        task_names = {t["task_id"]: str(t.get("name") or t["task_id"]) for t in summary["tasks"]}
        _render_compare(console, results.compare, task_names, env_names)
    if results.config_hash:
        console.print(f"[dim]config {escape(results.config_hash)}[/]", soft_wrap=True)
    if gate:
        _render_gate(console, gate)


def _render_task_scores(
    console: Console, tasks: list[dict[str, Any]], env_names: Mapping[str, str]
) -> None:
    if not tasks:
        return
    table = Table(title="Task scores", title_justify="left")
    table.add_column("task")
    table.add_column("score", justify="right")
    table.add_column("runs", justify="right")
    for env_id, name in env_names.items():
        table.add_column(escape(name if name == env_id else f"{name}\n{env_id}"), justify="right")
    for task in tasks:
        by_env = task.get("by_environment", {})
        table.add_row(
            escape(str(task.get("name") or task["task_id"])),
            escape(rate(task.get("score"), task.get("score_ci"))),
            str(task.get("runs", 0)),
            *(pct(by_env.get(env_id)) for env_id in env_names),
        )
    console.print(table)


def _render_environments(console: Console, environments: list[dict[str, Any]]) -> None:
    if not environments:
        return
    names = {e["environment_id"]: str(e.get("name") or e["environment_id"]) for e in environments}
    baseline = next(
        (e["comparison"]["baseline"] for e in environments if e.get("comparison")), None
    )
    title = "Environments"
    if baseline is not None:
        title += f" (Δ against {names.get(baseline, baseline)}; ▲▼ significant, · not)"
    table = Table(title=escape(title), title_justify="left")
    for column in ("environment", "score", "Δ score", "runs", "median duration"):
        table.add_column(column, justify="left" if column == "environment" else "right")
    table.add_column("mean tokens", justify="right")
    table.add_column("mean cost", justify="right")
    for env in environments:
        tokens = env.get("mean_tokens")
        comparison = env.get("comparison") or {}
        score_delta = (
            delta_cell(comparison["score"], lambda d: f"{d:+.2f}")
            if comparison
            else ("baseline" if baseline is not None else points(env.get("score_delta_to_best")))
        )
        table.add_row(
            escape(str(env.get("name") or env["environment_id"])),
            escape(rate(env.get("score"), env.get("score_ci"))),
            score_delta,
            str(env.get("runs", 0)),
            seconds(env.get("median_duration")),
            "—" if tokens is None else f"{float(tokens):,.0f}",
            dollars(env.get("mean_cost")),
        )
    console.print(table)
    aggregate_ids = list(
        dict.fromkeys(a for env in environments for a in env.get("aggregates", {}))
    )
    if not aggregate_ids:
        return
    table = Table(title="Signal aggregates by environment", title_justify="left")
    table.add_column("aggregate")
    for env in environments:
        table.add_column(escape(str(env.get("name") or env["environment_id"])))
    for aggregate_id in aggregate_ids:
        table.add_row(
            escape(aggregate_id),
            *(
                escape(format_value(env.get("aggregates", {}).get(aggregate_id)))
                for env in environments
            ),
        )
    console.print(table)


def _render_stability(
    console: Console, stability: Mapping[str, Any] | None, env_names: Mapping[str, str]
) -> None:
    """Repeat stability: per environment, pass@k and pass^k at k = repeats, flaky pairs and
    the runs needed to tell it from the best (docs/results.md)."""
    if not stability or int(stability.get("repeats") or 0) < 2:
        return
    pairs = stability.get("pairs", [])
    k = str(stability.get("repeats"))
    table = Table(title=f"Repeat stability ({k} repeats)", title_justify="left")
    for column in ("environment", "pairs", "flaky", f"pass@{k}", f"pass^{k}", "runs needed"):
        table.add_column(column, justify="left" if column == "environment" else "right")
    for env in stability.get("environments", []):
        if not env.get("pairs"):
            continue
        env_id = str(env.get("environment_id"))
        needed = env.get("runs_needed")
        table.add_row(
            escape(env_names.get(env_id, env_id)),
            str(env.get("pairs")),
            str(env.get("flaky_pairs", 0)),
            pct(env.get("pass_at_k", {}).get(k)),
            pct(env.get("pass_hat_k", {}).get(k)),
            "—" if needed is None else f"{needed} ({env.get('repeats_needed')} repeats)",
        )
    console.print(table)
    share = stability.get("flaky_share")
    console.print(
        f"[dim]flaky pairs (some but not all repeats pass): {stability.get('flaky_pairs', 0)}"
        f" of {len(pairs)} ({pct(share)}); runs needed: per environment, to tell its score"
        f" from the best one's at {pct(stability.get('power'))} power,"
        f" α {stability.get('alpha')}[/]"
    )


def _render_gate(console: Console, gate: Mapping[str, Any]) -> None:
    checked = gate.get("checked", [])
    failed = gate.get("failed", [])
    verdict = "[green]passed[/]" if gate.get("passed") else f"[red]failed ({len(failed)})[/]"
    console.print(f"\n[bold]Gate[/]: {verdict}, {len(checked)} conditions checked")
    for check in checked:
        mark = "[red]✗[/]" if check.get("holds") else "[green]✓[/]"
        console.print(
            f"  {mark} {escape(str(check.get('expr')))}: {escape(str(check.get('detail')))}",
            emoji=False,  # `cluster:new` is no emoji code
        )


def _render_clusters(console: Console, clusters: list[dict[str, Any]]) -> None:
    if not clusters:
        console.print("[dim]No failure clusters.[/]")
        return
    console.print(f"\n[bold]Failure clusters ({len(clusters)})[/]")
    for cluster in clusters:
        root = cluster.get("root_cause") or {}
        console.print(
            f"\n[bold red]{escape(str(cluster.get('category', '?')))}[/] "
            f"[dim]({plural(int(cluster.get('size', len(cluster.get('run_ids', [])))), 'run')}, "
            f"{escape(str(cluster.get('id', '')))})[/]"
        )
        if root:
            console.print(
                f"  root cause [bold]{escape(str(root.get('area', '?')))}[/]: "
                f"{escape(str(root.get('explanation', '')))}"
            )
        places = cluster.get("places") or []
        if places:
            shown_places = ", ".join(f"{p['name']} {p['runs']}" for p in places[:MAX_PLACES])
            rest = f" and {len(places) - MAX_PLACES} more" if len(places) > MAX_PLACES else ""
            console.print(f"  where: {escape(shown_places)}{rest}")
        if cluster.get("recommended_fix"):
            console.print(f"  fix: {escape(str(cluster['recommended_fix']))}")
        run_ids = [str(r) for r in cluster.get("run_ids", [])]
        shown = run_ids[:MAX_CLUSTER_RUN_IDS]
        more = f" (+{len(run_ids) - len(shown)} more)" if len(run_ids) > len(shown) else ""
        if shown:
            console.print(f"  runs: {ids(shown)}{more}")
        evidence = cluster.get("evidence", [])
        limit = len(evidence) if len(clusters) == 1 else CLUSTER_EVIDENCE
        for item in evidence[:limit]:
            where = item.get("run_id", "?")
            if item.get("event") is not None:
                where = f"{where} event {item['event']}"
            console.print(
                f"  [dim]{escape(str(where))}:[/] {escape(compact(item.get('snippet', ''), 160))}"
            )
        if len(evidence) > limit:
            console.print(
                f"  [dim]… {len(evidence) - limit} more (--error-category "
                f"{escape(repr(cluster.get('category', '')))} shows them all)[/]"
            )


def _render_suggestions(console: Console, suggestions: list[Mapping[str, Any]]) -> None:
    """Fixes ranked by how many failing runs they would address."""
    if not suggestions:
        return
    console.print("\n[bold]Suggestions[/] (by failing runs addressed)")
    for item in suggestions:
        runs = item.get("runs", 0)
        area = escape(str(item.get("area")))
        console.print(
            f"  • [bold]{runs} run{'s' if runs != 1 else ''}[/] [dim]{area}[/]"
            f" {escape(str(item.get('fix')))}"
        )


def _render_compare(
    console: Console,
    compare: Mapping[str, Any],
    task_names: Mapping[str, str],
    env_names: Mapping[str, str],
) -> None:
    overall = compare.get("score") or {"delta": compare.get("score_delta")}
    console.print(
        f"\n[bold]Compared with iteration {compare['iteration']}[/]: overall score "
        f"{delta_cell(overall, _signed)}"
    )
    paired = compare.get("paired")
    if paired and paired.get("mean_delta") is not None:
        entry = {**paired, "delta": paired["mean_delta"]}
        console.print(
            f"Paired over {paired['tasks']} shared task{'s' if paired['tasks'] != 1 else ''}: "
            f"mean task delta {delta_cell(entry, _signed)}"
        )
    sections: list[tuple[str, str, Mapping[str, str], bool]] = [
        ("Tasks", "task_id", task_names, True),
        ("Environments", "environment_id", env_names, True),
        ("Aggregates", "id", {}, False),
    ]
    for title, key, names, is_score in sections:
        rows = compare.get(title.lower(), [])
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        for column in (title.lower().rstrip("s"), "now", "before", "delta"):
            table.add_column(
                column, justify="left" if column not in {"now", "before", "delta"} else "right"
            )
        value_key = "score" if is_score else "value"
        for row in rows:
            show = pct if is_score else format_value
            table.add_row(
                escape(names.get(str(row[key]), str(row[key]))),
                escape(show(row.get(value_key))),
                escape(show(row.get("previous"))),
                delta_cell(row, _signed if is_score else None),
            )
        console.print(table)
    _render_cluster_changes(console, compare.get("clusters") or [])


_CHANGE_STYLE = {"new": "red", "grown": "red", "shrunk": "green", "resolved": "green"}


def _render_cluster_changes(console: Console, rows: Sequence[Mapping[str, Any]]) -> None:
    """Failure clusters matched by cause across the two iterations."""
    if not rows:
        return
    table = Table(title="Failure clusters", title_justify="left")
    for column in ("cluster", "change", "now", "before", "delta"):
        table.add_column(column, justify="left" if column in {"cluster", "change"} else "right")
    for row in rows:
        style = _CHANGE_STYLE.get(str(row.get("change")), "dim")
        table.add_row(
            escape(str(row.get("category", row.get("key", "?")))),
            f"[{style}]{escape(str(row.get('change', '')))}[/]",
            str(row.get("runs", 0)),
            str(row.get("previous_runs", 0)),
            f"{int(row.get('delta', 0)):+d}",
        )
    console.print(table)


def _signed(delta: Any) -> str:
    return f"{float(delta):+.2f}"


# -- history ------------------------------------------------------------------------------------


def render_history(console: Console, page: Page[AuditEvent], names: Names | None = None) -> None:
    names = names or Names()
    items = page.items
    table = Table(title=f"History ({plural(len(items), 'event')})", title_justify="left")
    table.add_column("position", justify="right")
    table.add_column("time", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("summary", overflow="fold")
    for event in items:
        table.add_row(
            str(event.position),
            escape(when(event.time)),
            escape(event.type),
            escape(names.in_text(event.summary)),
        )
    console.print(table)


def render_iterations(console: Console, page: Page[IterationStatus]) -> None:
    render_list(
        console,
        page,
        title="Iterations",
        empty="No iterations yet: tpc sim experiment run EXP",
        columns=(
            Column("iteration", justify="right"),
            Column("status"),
            *(Column(name, justify="right") for name in ("runs", "finished", *TERMINAL)),
            Column("created"),
        ),
        row=lambda status: (
            str(status.iteration)
            + (" (imported)" if status.imported else "")
            + (f" (re-score of {status.rescore_of})" if status.rescore_of else ""),
            styled(status.status),
            str(status.runs.total),
            str(finished_runs(status)),
            *(str(getattr(status.runs, key)) for key in TERMINAL),
            escape(when(status.created_at)),
        ),
    )


def render_runs(console: Console, page: Page[RunRow], names: Names | None = None) -> None:
    names = names or Names()
    render_list(
        console,
        page,
        title="Runs",
        empty="No runs match.",
        columns=(
            # The run's id never wraps (it is copied into `tpc sim run …`); names fold.
            Column("run", no_wrap=True),
            Column("task", overflow="fold"),
            Column("environment", overflow="fold"),
            Column("repeat", justify="right"),
            Column("status"),
            Column("reason"),
            Column("duration", justify="right"),
        ),
        row=lambda run: (
            escape(run.id),
            escape(names.task(run.task_id)),
            escape(names.environment(run.environment_id)),
            str(run.repeat),
            styled(run.status),
            escape(run.termination_reason or "—"),
            seconds((run.stats or {}).get("duration")),
        ),
        # The next page is the same command (whatever its filters) with --cursor added.
        more="add",
    )
