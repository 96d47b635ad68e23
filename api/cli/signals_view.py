"""Drawing a signals report (docs/spec.md §8 shape) for people: aggregates, per group, and per
run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

_SPARK = "▁▂▃▄▅▆▇█"
# Beyond this many runs a table stops being readable; JSON output has them all.
MAX_RUN_ROWS = 50


def format_value(value: Any, fn: str | None = None) -> str:
    """A compact, readable rendering of any aggregate or signal value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if fn == "rate":
            return f"{value:.2f} ({value:.0%})"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict) and "histogram" in value and "p50" in value:
        return _distribution(value)
    if isinstance(value, dict):
        # One line: a value spread over several lines would push a table's later rows down.
        return ", ".join(f"{one_line(str(k))} {format_value(item)}" for k, item in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return one_line(str(value))


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def with_interval(text: str, ci: Any, digits: int = 2) -> str:
    """`0.62 [0.48, 0.75]`: a value followed by its interval, when it has one."""
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        return f"{text} [{_bound(ci[0], digits)}, {_bound(ci[1], digits)}]"
    if isinstance(ci, dict) and "p50" in ci:  # a distribution: the median's interval
        return with_interval(text, ci["p50"], digits) + " (p50)"
    return text


def _bound(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"


def aggregate_cell(group: dict[str, Any], fn: str) -> str:
    """An aggregate's value for a table, rates as `0.62 [0.48, 0.75]`."""
    value = group.get("value")
    if fn == "rate" and isinstance(value, float):
        return with_interval(f"{value:.2f}", group.get("ci"))
    return with_interval(format_value(value, fn), group.get("ci"))


def _distribution(value: dict[str, Any]) -> str:
    counts = [int(b["count"]) for b in value["histogram"]]
    top = max(counts) or 1
    spark = "".join(
        _SPARK[min(len(_SPARK) - 1, round(c / top * (len(_SPARK) - 1)))] for c in counts
    )
    return (
        f"{spark}  n={value['count']} min={format_value(value['min'])} "
        f"p50={format_value(value['p50'])} p90={format_value(value['p90'])} "
        f"max={format_value(value['max'])}"
    )


def render_signals_report(
    console: Console,
    report: dict[str, Any],
    evidence: bool,
    env_names: dict[str, str] | None = None,
    by_environment: bool = True,
    task_names: dict[str, str] | None = None,
) -> None:
    aggregates = report["aggregates"]
    runs = report["runs"]
    title = "Signal aggregates"
    if report.get("experiment_id"):
        title += f" — {report['experiment_id']} iteration {report['iteration']}"
    if aggregates:
        table = Table(title=title, title_justify="left")
        confidence = report.get("confidence")
        value_column = f"value [{float(confidence):.0%} CI]" if confidence else "value"
        for column in ("aggregate", "fn", value_column, "n", "missing"):
            table.add_column(column, justify="right" if column in {"n", "missing"} else "left")
        for agg in aggregates:
            table.add_row(
                escape(agg["label"]),
                agg["fn"],
                escape(aggregate_cell(agg, agg["fn"])),
                str(agg["n"]),
                str(agg["missing"]),
            )
        console.print(table)
        if by_environment:
            _render_by_environment(console, aggregates, env_names or {})
    else:
        console.print("[dim]The config defines no aggregates.[/]")
    if runs:
        _render_runs(console, runs, env_names or {}, task_names or {})
    if evidence:
        _render_evidence(console, runs)
    if report.get("config_hash"):
        console.print(f"[dim]config {escape(str(report['config_hash']))}[/]", soft_wrap=True)


def _render_by_environment(
    console: Console, aggregates: list[dict[str, Any]], names: dict[str, str]
) -> None:
    environments = sorted({env for agg in aggregates for env in agg["by_environment"]})
    if len(environments) < 2:
        return
    table = Table(title="By environment", title_justify="left")
    table.add_column("aggregate")
    for env in environments:
        table.add_column(escape(names.get(env, env)))
    for agg in aggregates:
        cells = [
            escape(aggregate_cell(agg["by_environment"].get(env, {}), agg["fn"]))
            for env in environments
        ]
        table.add_row(escape(agg["label"]), *cells)
    console.print(table)


def _run_name(run: dict[str, Any]) -> str:
    if run.get("run_id"):
        return str(run["run_id"])
    return Path(str(run.get("transcript"))).stem


def _render_runs(
    console: Console,
    runs: list[dict[str, Any]],
    env_names: dict[str, str],
    task_names: dict[str, str],
) -> None:
    shown = runs[:MAX_RUN_ROWS]
    title = (
        f"Runs ({len(runs)})"
        if len(shown) == len(runs)
        else (f"Runs (first {len(shown)} of {len(runs)}; --format json lists them all)")
    )
    table = Table(title=title, title_justify="left")
    # Ids never wrap (a wrapped id cannot be copied); names and values fold when narrow.
    table.add_column("run", no_wrap=True)
    table.add_column("task", overflow="fold")
    table.add_column("environment", overflow="fold")
    table.add_column("status")
    table.add_column("signal", no_wrap=True)
    table.add_column("value", overflow="fold")
    for run in shown:
        # One row per signal, so a long value only makes its own row taller.
        items = list(run["signals"].items()) or [("—", {"value": None})]
        for position, (signal_id, item) in enumerate(items):
            first = position == 0
            table.add_row(
                escape(_run_name(run)) if first else "",
                escape(_named(task_names, run["task_id"])) if first else "",
                escape(_named(env_names, run["environment_id"])) if first else "",
                escape(str(run["status"] or "—")) if first else "",
                escape(signal_id),
                "[red]missing[/]" if item.get("error") else escape(format_value(item["value"])),
                end_section=position == len(items) - 1,
            )
    console.print(table)


def _named(names: dict[str, str], key: Any) -> str:
    """A name when one is known, else the id itself."""
    return names.get(str(key), str(key))


def _render_evidence(console: Console, runs: list[dict[str, Any]]) -> None:
    for run in runs:
        console.print(f"\n[bold]{escape(_run_name(run))}[/]")
        for signal_id, item in run["signals"].items():
            if item.get("error"):
                console.print(f"  {escape(signal_id)}: [red]{escape(item['error'])}[/]")
            for ev in item["evidence"]:
                where = "run" if ev["event"] is None else f"event {ev['event']}"
                snippet = " ".join(str(ev["snippet"]).split())
                console.print(f"  {escape(signal_id)} [dim]{where}:[/] {escape(snippet)}")
