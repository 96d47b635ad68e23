"""`tpc sim run`: one run's record, its transcript as a conversation (or followed live as it
happens), and its tool calls."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from api.cli.client import ApiClient, api_client, segment
from api.cli.exit_codes import ExitCode
from api.cli.experiment_commands import poll_interval
from api.cli.names import Names, names_of
from api.cli.output import Output, current_output
from api.cli.results_view import compact, details_table, dollars, seconds, styled
from api.cli.signals_view import format_value
from domain.vocabulary import TERMINAL
from projections.read_models import RunLog, RunRow

# Table cells stay readable; `run logs` and `--format json` show everything.
ACTION_INPUT_CHARS = 80
ACTION_RESULT_CHARS = 120
_ROLE_STYLE = {"system": "magenta", "user": "green", "assistant": "blue", "tool": "yellow"}
# How often `run logs --follow` asks for new messages (TPC_POLL_INTERVAL overrides it).
FOLLOW_INTERVAL_S = 1.0


def run_path(run_id: str) -> str:
    return f"/v1/runs/{segment(run_id)}"


@click.group("run")
def run_group() -> None:
    """Runs: one task × environment inside an iteration.

    Example: tpc sim run logs run_k3x9
    """


@run_group.command("get")
@click.argument("run_id", metavar="RUN")
def get(run_id: str) -> None:
    """Show a run: status, termination reason, stats and signal values.

    Example: tpc sim run get run_k3x9
    """
    client = api_client()
    document, run = client.get_model(run_path(run_id), RunRow)

    def render(console: Console) -> None:
        render_run(console, run, names_of(client, run.task_id, run.environment_id))

    current_output().emit(document, render)


@run_group.command("logs")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Print messages as they happen until the run ends (polls every 1 s; Ctrl-C stops). "
    "With --format json: one JSON object per line, each message, then the run.",
)
def logs(run_id: str, follow: bool) -> None:
    """Show a run's transcript as a conversation (JSON: the tpc transcript v1 itself).

    With --follow, show the messages of a running run as they happen, then its final status
    (a finished run: its whole transcript, then its status).

    Example: tpc sim run logs run_k3x9 --follow
    """
    client = api_client()
    if follow:
        follow_run(client, run_id, current_output(), follow_interval())
        return
    transcript = client.get(f"{run_path(run_id)}/transcript")

    def render(console: Console) -> None:
        names = names_of(client, transcript.get("task_id"), transcript.get("environment_id"))
        render_transcript(console, transcript, names)

    current_output().emit(transcript, render)


def follow_interval() -> float:
    return poll_interval() if os.environ.get("TPC_POLL_INTERVAL", "").strip() else FOLLOW_INTERVAL_S


def follow_run(client: ApiClient, run_id: str, output: Output, interval: float) -> None:
    """Poll the run's log (`GET /v1/runs/{id}/logs`) and print each new message, then the run's
    final status. JSON Lines with `--format json`: `{"index", "attempt", "role", "content"}`
    per message, and last the run as `run get` prints it. Ctrl-C stops (exit 130)."""
    path = f"{run_path(run_id)}/logs"
    try:
        if not output.is_json:
            _, run = client.get_model(run_path(run_id), RunRow)
            names = names_of(client, run.task_id, run.environment_id)
            render_follow_header(output.console, run, names)
        after, attempt = 0, None
        while True:
            _, page = client.get_model(path, RunLog, {"after": after})
            if attempt is not None and page.attempt != attempt:
                # A new attempt (the run was retried) numbers its messages from 0 again.
                if attempt and not output.is_json:
                    _announce_retry(output, page.attempt)
                attempt, after = page.attempt, 0
                continue
            attempt = page.attempt
            _print_messages(output, attempt, page.messages)
            after = page.next
            if page.done:
                break
            if page.status not in TERMINAL or not page.messages:
                time.sleep(interval)
        document, run = client.get_model(run_path(run_id), RunRow)
    except KeyboardInterrupt:
        output.errors.print(f"stopped following {escape(run_id)}")
        raise SystemExit(ExitCode.INTERRUPTED) from None  # as a shell reports Ctrl-C; no traceback
    if output.is_json:
        click.echo(json.dumps(document, ensure_ascii=False))
    else:
        output.console.print()
        render_final_status(output.console, run)


def _announce_retry(output: Output, attempt: int) -> None:
    output.console.print()
    output.console.print(Text(f"attempt {attempt} (the run was retried):", style="dim"))


def _print_messages(output: Output, attempt: int, messages: list[dict[str, Any]]) -> None:
    """New log messages: one JSON line each, or rendered for a person."""
    for item in messages:
        if output.is_json:
            line = {"index": item["index"], "attempt": attempt, **item}
            click.echo(json.dumps(line, ensure_ascii=False))
        else:
            output.console.print()
            render_message(output.console, item["index"], item)


@run_group.command("actions")
@click.argument("run_id", metavar="RUN")
def actions(run_id: str) -> None:
    """Show a run's tool calls, each with its result.

    Example: tpc sim run actions run_k3x9
    """
    document = api_client().get(f"{run_path(run_id)}/actions")
    current_output().emit(document, lambda console: render_actions(console, document))


def _stats_line(stats: dict[str, Any]) -> str:
    parts = []
    if stats.get("duration") is not None:
        parts.append(seconds(stats["duration"]))
    if stats.get("token_in") is not None or stats.get("token_out") is not None:
        parts.append(f"{stats.get('token_in') or 0:,} in / {stats.get('token_out') or 0:,} out")
    if stats.get("cost") is not None:
        parts.append(dollars(stats["cost"]))
    if stats.get("model"):
        parts.append(str(stats["model"]))
    # Status and termination reason have their own rows; the rest are derived stats.
    shown = {"duration", "token_in", "token_out", "cost", "model", "status", "termination_reason"}
    parts.extend(
        f"{key} {format_value(value)}"
        for key, value in stats.items()
        if key not in shown and value is not None
    )
    return ", ".join(parts) or "—"


def render_run(console: Console, run: RunRow, names: Names | None = None) -> None:
    names = names or Names()
    task, env = run.task_id, run.environment_id
    rows = [
        ("id", escape(run.id)),
        ("experiment", f"{escape(run.experiment_id)} iteration {run.iteration}"),
        ("task", escape(task if names.task(task) == task else f"{names.task(task)} ({task})")),
        (
            "environment",
            escape(env if names.environment(env) == env else f"{names.environment(env)} ({env})"),
        ),
        ("repeat", str(run.repeat)),
        ("status", styled(run.status)),
        ("termination", escape(run.termination_reason or "—")),
        ("attempts", str(run.attempts)),
        ("stats", escape(_stats_line(run.stats or {}))),
    ]
    if run.error:
        rows.append(("error", f"[red]{escape(run.error)}[/]"))
    console.print(details_table(f"Run {escape(run.id)}", rows))
    signals = run.signals
    if signals:
        table = Table(title="Signals", title_justify="left")
        for column in ("signal", "value", "evidence"):
            table.add_column(column, overflow="fold")
        for signal_id, item in signals.items():
            value = (
                f"[red]missing: {escape(str(item['error']))}[/]"
                if item.get("error")
                else escape(format_value(item.get("value")))
            )
            table.add_row(escape(signal_id), value, str(len(item.get("evidence") or [])))
        console.print(table)


def _pair(names: Names, task: str | None, env: str | None) -> str:
    """`install-sdk × Claude + docs`: the task and the environment, by name."""
    return f"{names.task(task) if task else '?'} × {names.environment(env) if env else '?'}"


def render_follow_header(console: Console, run: RunRow, names: Names | None = None) -> None:
    header = Text()
    header.append(_pair(names or Names(), run.task_id, run.environment_id))
    header.append("  ")
    header.append_text(Text.from_markup(styled(run.status)))
    console.print(header, style="bold")


def render_final_status(console: Console, run: RunRow) -> None:
    """One line: the run, its status, why it ended, its stats (and its error)."""
    line = Text(f"{run.id} ", style="bold")
    line.append_text(Text.from_markup(styled(run.status)))
    if run.termination_reason:
        line.append(f" ({run.termination_reason})")
    line.append(f" · {_stats_line(run.stats or {})}", style="dim")
    if run.error:
        line.append(f" · {run.error}", style="red")
    console.print(line)


def render_transcript(
    console: Console, transcript: dict[str, Any], names: Names | None = None
) -> None:
    header = Text()
    header.append(
        _pair(names or Names(), transcript.get("task_id"), transcript.get("environment_id"))
    )
    header.append("  ")
    header.append_text(Text.from_markup(styled(transcript.get("status"))))
    if transcript.get("termination_reason"):
        header.append(f" ({transcript['termination_reason']})")
    console.print(header, style="bold")
    console.print(Text(_stats_line(transcript.get("stats") or {}), style="dim"))
    for index, message in enumerate(transcript.get("messages", [])):
        console.print()
        render_message(console, index, message)
    if transcript.get("final_answer"):
        console.print()
        console.print(Text("final answer", style="bold"))
        console.print(Text(str(transcript["final_answer"])))


def render_message(console: Console, index: int, message: dict[str, Any]) -> None:
    """`[index] role`, then each block of the message."""
    role = str(message.get("role", "?"))
    console.print(Text(f"[{index}] {role}", style=f"bold {_ROLE_STYLE.get(role, '')}".strip()))
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    for block in blocks:
        console.print(_block(block))


def _block(block: Any) -> Text:
    if not isinstance(block, dict):
        return Text(str(block))
    kind = block.get("type")
    if kind == "text":
        return Text(str(block.get("text", "")))
    if kind == "thinking":
        return Text(str(block.get("thinking", "")), style="dim italic")
    if kind == "tool_call":
        text = Text("→ ", style="cyan")
        text.append(str(block.get("name", "?")), style="bold cyan")
        text.append(f" {compact(block.get('input', {}))}", style="cyan")
        return text
    if kind == "tool_result":
        error = bool(block.get("is_error"))
        text = Text("← error: " if error else "← ", style="red" if error else "yellow")
        text.append(_result_text(block.get("content", "")), style="red" if error else "")
        return text
    return Text(compact(block), style="dim")


def _result_text(content: Any) -> str:
    """A tool result's text; providers may send a list of text blocks."""
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


def render_actions(console: Console, document: dict[str, Any]) -> None:
    items = document.get("actions", [])
    if not items:
        console.print(f"Run {escape(str(document.get('run_id')))} made no tool calls.")
        return
    table = Table(title=f"Tool calls of {escape(str(document.get('run_id')))} ({len(items)})")
    table.title_justify = "left"
    for column in ("#", "event", "tool", "input", "result"):
        table.add_column(column, justify="right" if column in {"#", "event"} else "left")
    for number, action in enumerate(items, start=1):
        result = escape(compact(action.get("result") or "", ACTION_RESULT_CHARS))
        table.add_row(
            str(number),
            str(action.get("event", "")),
            escape(str(action.get("name", ""))),
            escape(compact(action.get("input", {}), ACTION_INPUT_CHARS)),
            f"[red]error: {result}[/]" if action.get("is_error") else result,
        )
    console.print(table)
