"""An iteration's runs as a table for notebooks: one row per run, stable column names
(docs/results.md, "Exporting an iteration"), written as JSON Lines, CSV or Parquet.

The rows are built from the API's answers (the runs list, parsed as `RunRow`s, and the
results' task and environment names), so an export holds exactly what the server shows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from domain.errors import InvalidInput
from projections.read_models import RunRow

# Columns every export has, in this order; then one `signal.<id>` column per signal, by id.
RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "iteration",
    "task_id",
    "task_name",
    "environment_id",
    "environment_name",
    "repeat",
    "status",
    "termination_reason",
    "attempts",
    "error",
    "started_at",
    "ended_at",
    "source_file",
    "source_sample",
)
STATS_COLUMNS = (
    "duration",
    "token_in",
    "token_out",
    "token_total",
    "cost",
    "tool_calls",
    "steps",
    "turns",
    "model",
    "judge_cost",
    "judge_token_in",
    "judge_token_out",
)
SIGNAL_PREFIX = "signal."
EXPORT_FORMATS = ("jsonl", "csv", "parquet")


def signal_ids(runs: Iterable[RunRow]) -> list[str]:
    """Every signal some run has a value for, by id (a cancelled run has none)."""
    return sorted({sid for run in runs for sid in run.signals})


def columns(signals: Sequence[str]) -> list[str]:
    return [
        *RUN_COLUMNS,
        *(f"stats.{name}" for name in STATS_COLUMNS),
        *(SIGNAL_PREFIX + sid for sid in signals),
    ]


def run_rows(
    runs: Sequence[RunRow],
    task_names: Mapping[str, str],
    environment_names: Mapping[str, str],
) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, one row per run): the run's fields, its stats and each signal's value
    (None when the run has none, or the value is missing)."""
    signals = signal_ids(runs)
    rows = []
    for run in runs:
        stats = run.stats or {}
        values = run.signals
        row: dict[str, Any] = {
            "run_id": run.id,
            "experiment_id": run.experiment_id,
            "iteration": run.iteration,
            "task_id": run.task_id,
            "task_name": task_names.get(run.task_id),
            "environment_id": run.environment_id,
            "environment_name": environment_names.get(run.environment_id),
            "repeat": run.repeat,
            "status": run.status,
            "termination_reason": run.termination_reason,
            "attempts": run.attempts,
            "error": run.error,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "source_file": run.source.file if run.source else None,
            "source_sample": run.source.sample if run.source else None,
        }
        row.update({f"stats.{name}": stats.get(name) for name in STATS_COLUMNS})
        row.update({SIGNAL_PREFIX + sid: (values.get(sid) or {}).get("value") for sid in signals})
        rows.append(row)
    return columns(signals), rows


def write_jsonl(rows: Iterable[Mapping[str, Any]], out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_csv(names: Sequence[str], rows: Iterable[Mapping[str, Any]], out: TextIO) -> None:
    """Empty for None; true/false for booleans; lists and objects as JSON."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_cell(row[name]) for name in names])


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_parquet(names: Sequence[str], rows: Sequence[Mapping[str, Any]], out: Path) -> None:
    """Columns typed by their values (a signal holding lists or objects is JSON text)."""
    try:
        import pyarrow as pa  # optional: `pip install 'tpc-sim[parquet]'`
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(
            "--to parquet needs pyarrow: pip install 'tpc-sim[parquet]' (or export jsonl/csv)",
            (("to", "parquet needs pyarrow"),),
        ) from None
    data = {name: [_parquet_cell(row[name]) for row in rows] for name in names}
    table = pa.table({name: _column(pa, values) for name, values in data.items()})
    pq.write_table(table, str(out))


def _parquet_cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _column(pa: Any, values: list[Any]) -> Any:
    """One arrow array; a column mixing kinds (a number and a text) becomes text."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


def write_table(
    to: str,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    output: Path | None,
    stdout: TextIO,
) -> None:
    """Write the rows as `to` to `output`, or to `stdout` (jsonl and csv only)."""
    if to == "parquet":
        if output is None:
            raise InvalidInput(
                "--to parquet writes a file: give it with --output FILE",
                (("output", "required for parquet"),),
            )
        write_parquet(names, rows, output)
        return
    text = io.StringIO()
    if to == "csv":
        write_csv(names, rows, text)
    else:
        write_jsonl(rows, text)
    if output is None:
        stdout.write(text.getvalue())
    else:
        output.write_text(text.getvalue(), encoding="utf-8")
