"""The demo's results as a short story: what ran, who won (and whether the gap is significant),
the top failure clusters, and where to look next. Every figure comes from the iteration's
status and results documents as the API returns them (docs/results.md); the whole tables are
one command away (`tpc sim experiment results`), so none is printed here."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console

from api.readable import duration, plural
from domain.vocabulary import TERMINAL
from projections.read_models import IterationStatus, Results

TOP_CLUSTERS = 3


@dataclass(frozen=True)
class NextSteps:
    """Where the demo's store can be explored, and whether its server is still up."""

    api_url: str
    token: str
    experiment_id: str
    iteration: int
    tpc: str  # how to call `tpc` from this shell
    database_url: str
    port: int
    serving: bool


def say(console: Console, text: str, indent: int, hanging: int | None = None) -> None:
    """Plain text wrapped to the terminal, indented (rich would pad every line to its width);
    lines after the first are indented by `hanging` when given (a numbered item's text)."""
    width = max(console.width, 40)
    wrapped = textwrap.fill(
        text,
        width,
        initial_indent=" " * indent,
        subsequent_indent=" " * (indent if hanging is None else hanging),
    )
    console.print(wrapped, markup=False, highlight=False, soft_wrap=True)


def pct(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{float(value):.0%}"


def interval(ci: Any) -> str:
    """[0.44, 0.97] → '[44–97%]'; '' when there is none."""
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2:
        return ""
    return f"[{float(ci[0]) * 100:.0f}–{float(ci[1]) * 100:.0f}%]"


def points(value: float) -> str:
    rounded = round(value * 100)
    return "±0" if rounded == 0 else f"{rounded:+d}".replace("-", "−")


def gap(entry: Mapping[str, Any] | None) -> str:
    """A score difference to the leader, in points, with its interval and its verdict."""
    if not entry or not isinstance(entry.get("delta"), int | float):
        return ""
    text = f"{points(entry['delta'])} pts"
    ci = entry.get("ci")
    if isinstance(ci, Sequence) and len(ci) == 2:
        text += f" [{points(ci[0])}, {points(ci[1])}]"
    verdict = entry.get("verdict")
    p_adjusted = entry.get("p_adjusted")
    p = f" (p = {p_adjusted:.2f})" if isinstance(p_adjusted, int | float) else ""
    if verdict in ("significant", "not significant"):
        return f"{text}: {verdict}{p}"
    if verdict == "too few runs":
        return f"{text}: too few runs to test"
    return text


def render_story(
    console: Console,
    experiment_name: str,
    status: IterationStatus,
    results: Results,
    next_steps: NextSteps,
    next_console: Console | None = None,
) -> None:
    """The four parts; `next_console` takes "where to look next" (stderr when stdout is JSON)."""
    _what_ran(console, experiment_name, status, results)
    _who_won(console, results)
    _top_clusters(console, results.failure_clusters)
    render_next_steps(next_console or console, results, next_steps)


def _elapsed(status: IterationStatus) -> str:
    if status.completed_at is None:
        return ""
    try:
        start = datetime.fromisoformat(status.created_at)
        end = datetime.fromisoformat(status.completed_at)
    except ValueError:
        return ""
    return f" in {duration((end - start).total_seconds())}"


def _what_ran(console: Console, name: str, status: IterationStatus, results: Results) -> None:
    summary = results.summary
    runs = status.runs
    repeats = (summary.get("stability") or {}).get("repeats")
    shape = (
        f"{plural(len(summary['tasks']), 'task')} × "
        f"{plural(len(summary['environments']), 'environment')}"
        + (f" × {plural(repeats, 'repeat')}" if repeats else "")
    )
    counts = ", ".join(
        f"{getattr(runs, s)} {s.replace('_', ' ')}" for s in TERMINAL if getattr(runs, s)
    )
    console.print("[bold]What ran[/]")
    say(
        console,
        f"{name}, iteration {status.iteration}: {shape} = "
        f"{plural(runs.total, 'run')}{_elapsed(status)}.",
        2,
    )
    say(
        console,
        f"{counts}: overall score {pct(summary.get('score'))} "
        f"{interval(summary.get('score_ci'))} ({results.confidence:.0%} intervals).",
        2,
    )


def _who_won(console: Console, results: Results) -> None:
    environments = sorted(
        results.summary["environments"],
        key=lambda e: -1.0 if e.get("score") is None else float(e["score"]),
        reverse=True,
    )
    console.print()
    console.print("[bold]Who won[/]")
    if not environments:
        console.print("  No environment ran.")
        return
    compared = [e for e in environments if e.get("comparison")]
    baseline_id = compared[0]["comparison"].get("baseline") if compared else None
    rows = []
    for rank, environment in enumerate(environments, 1):
        score = f"{pct(environment.get('score'))} {interval(environment.get('score_ci'))}"
        if environment["environment_id"] == baseline_id:
            against = "leader (the others are compared with it)"
        else:
            against = gap((environment.get("comparison") or {}).get("score"))
        rows.append((f"{rank}.", environment["name"], score, against))
    # Aligned by hand rather than a table: a table pads every line to the terminal's width.
    name_width = max(len(row[1]) for row in rows)
    score_width = max(len(row[2]) for row in rows)
    for rank_text, name, score, against in rows:
        text = f"  {rank_text} {name.ljust(name_width)}  {score.rjust(score_width)}  {against}"
        if len(text) > console.width:  # the gap goes under its row rather than wrap mid-word
            text = f"  {rank_text} {name.ljust(name_width)}  {score.rjust(score_width)}"
            text += f"\n{' ' * (len(rank_text) + 3)}{against}" if against else ""
        console.print(text.rstrip(), markup=False, highlight=False, soft_wrap=True)
    say(console, _verdict(environments, results), 2)


def _verdict(environments: list[Mapping[str, Any]], results: Results) -> str:
    """One sentence: does the leader win, and if not, how many runs would tell."""
    leader = environments[0]["name"]
    others = [e for e in environments[1:] if (e.get("comparison") or {}).get("score")]
    if len(environments) == 1:
        return f"{leader} ran alone: nothing to compare it with."
    if not others:
        return f"{leader} scores best; no test compared it with the others."
    level = f"at the {results.confidence:.0%} level (Holm-adjusted p)"
    behind = [e["name"] for e in others if e["comparison"]["score"].get("verdict") == "significant"]
    unclear = [e for e in others if e["comparison"]["score"].get("verdict") != "significant"]
    if not unclear:
        return f"{leader} wins: significantly ahead of every other environment {level}."
    stability = {
        e["environment_id"]: e
        for e in ((results.summary.get("stability") or {}).get("environments") or [])
    }
    needed = [
        f"{e['name']} {stability[e['environment_id']]['runs_needed']} runs "
        f"({plural(stability[e['environment_id']]['repeats_needed'], 'repeat')})"
        for e in unclear
        if (stability.get(e["environment_id"]) or {}).get("runs_needed")
    ]
    runs = {e.get("runs") for e in environments}
    per = f"{plural(runs.pop(), 'run')} per environment" if len(runs) == 1 else "these runs"
    if behind:
        sentence = (
            f"{leader} leads: significantly ahead of {', '.join(behind)}, but not of "
            f"{', '.join(e['name'] for e in unclear)} with {per} {level}."
        )
    else:
        sentence = f"{leader} leads, but with {per} no gap is significant {level}."
    if needed:
        power = (results.summary.get("stability") or {}).get("power") or 0.8
        sentence += f" To tell them apart at {power:.0%} power: {'; '.join(needed)}."
    return sentence


def _top_clusters(console: Console, clusters: Sequence[Mapping[str, Any]]) -> None:
    console.print()
    if not clusters:
        console.print("[bold]Failure clusters[/]\n  No failing runs.")
        return
    ranked = sorted(clusters, key=lambda c: -int(c.get("size") or 0))
    failing = sum(int(c.get("size") or 0) for c in clusters)
    console.print(
        f"[bold]Top failure clusters[/] ({plural(len(clusters), 'cluster')} of "
        f"{plural(failing, 'failing run')})"
    )
    for rank, cluster in enumerate(ranked[:TOP_CLUSTERS], 1):
        area = (cluster.get("root_cause") or {}).get("area")
        where = f", {area} issue" if area else ""
        say(
            console,
            f"{rank}. {cluster.get('category')}: {plural(cluster.get('size'), 'run')}{where}",
            2,
            hanging=5,
        )
        if cluster.get("recommended_fix"):
            say(console, f"fix: {cluster['recommended_fix']}", 5)
    rest = ranked[TOP_CLUSTERS:]
    if rest:
        named = ", ".join(f"{c.get('category')} ({plural(c.get('size'), 'run')})" for c in rest)
        say(console, f"… and {len(rest)} more: {named}", 2)


def render_next_steps(console: Console, results: Results, steps: NextSteps) -> None:
    """The dashboard address and the commands to explore with, each on one line that is never
    wrapped (it must survive a copy and paste from a narrow terminal)."""

    def line(text: str) -> None:
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    exp = steps.experiment_id
    page = f"{steps.api_url}/experiments/{exp}/iterations/{steps.iteration}"
    console.print()
    if steps.serving:
        console.print("[bold]Where to look next[/] (the server runs until Ctrl-C)")
    else:
        console.print("[bold]Where to look next[/]")
        line(
            "  The demo's server has stopped (it keeps serving only at a terminal or with --keep)."
        )
        line("  Serve this store again, with the same token and ids:")
    line(f"  export TPC_API_URL={steps.api_url} TPC_API_TOKEN={steps.token}")
    if not steps.serving:
        line(f"  TPC_DATABASE_URL={steps.database_url} {steps.tpc} serve --port {steps.port} &")
    line(f"  Dashboard: {page} (sign in with the token)")
    line(f"  {steps.tpc} sim experiment results {exp}   # every table: tasks, stability, clusters")
    line(f"  {steps.tpc} sim experiment signals {exp}   # the signal aggregates")
    clusters = sorted(results.failure_clusters, key=lambda c: -int(c.get("size") or 0))
    if clusters and clusters[0].get("run_ids"):
        line(
            f"  {steps.tpc} sim run logs {clusters[0]['run_ids'][0]}   "
            f"# a run of the top cluster, as a conversation"
        )
    if not steps.serving:
        line(f"  Or run a fresh demo that keeps serving until Ctrl-C: {steps.tpc} demo --keep")
