"""The export table (`api/cli/run_table.py`): the same columns whatever the runs hold, every
signal's value in its own column, CSV cells as notebooks read them, Parquet typed by value."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from api.cli.run_table import RUN_COLUMNS, STATS_COLUMNS, run_rows, write_table
from projections.read_models import RunRow


def run(run_id: str, signals: dict[str, Any], status: str = "passed") -> dict[str, Any]:
    return {
        "id": run_id,
        "experiment_id": "exp_1",
        "iteration": 3,
        "task_id": "task_a",
        "environment_id": "env_1",
        "repeat": 0,
        "status": status,
        "termination_reason": "completed",
        "attempts": 1,
        "stats": {"duration": 1.5, "token_total": 30, "model": "m", "user_cost": 9},
        "error": None,
        "signals": {sid: {"value": value, "evidence": []} for sid, value in signals.items()},
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T00:00:01+00:00",
    }


RUNS = [
    RunRow.model_validate(document)
    for document in (
        run("run_1", {"gave-up": True, "lookups": 2, "tags": ["a", "b"]}),
        run("run_2", {"gave-up": None, "lookups": 0.5, "tags": []}, "failed"),
        {**run("run_3", {}, "cancelled"), "signals": {}, "stats": None},
    )
]


def test_columns_are_fixed_then_one_per_signal_by_id() -> None:
    names, rows = run_rows(RUNS, {"task_a": "refund"}, {"env_1": "sonnet"})
    assert names == [
        *RUN_COLUMNS,
        *(f"stats.{name}" for name in STATS_COLUMNS),
        "signal.gave-up",
        "signal.lookups",
        "signal.tags",
    ]
    assert [list(row) for row in rows] == [names] * 3
    first, second, cancelled = rows
    assert (first["task_name"], first["environment_name"]) == ("refund", "sonnet")
    assert (first["signal.gave-up"], first["signal.lookups"], first["signal.tags"]) == (
        True,
        2,
        ["a", "b"],
    )
    assert first["stats.token_total"] == 30 and first["stats.cost"] is None
    assert "stats.user_cost" not in first  # only the documented stats
    assert second["signal.gave-up"] is None
    assert cancelled["signal.lookups"] is None and cancelled["stats.duration"] is None


def test_csv_and_parquet_hold_the_same_values(tmp_path: Path) -> None:
    names, rows = run_rows(RUNS, {}, {})
    out = io.StringIO()
    write_table("csv", names, rows, None, out)
    cells = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [c["signal.gave-up"] for c in cells] == ["true", "", ""]
    assert [c["signal.tags"] for c in cells] == ['["a", "b"]', "[]", ""]
    assert cells[0]["task_name"] == ""  # a name the results did not give

    lines = io.StringIO()
    write_table("jsonl", names, rows, None, lines)
    assert [json.loads(line) for line in lines.getvalue().splitlines()] == rows

    path = tmp_path / "runs.parquet"
    write_table("parquet", names, rows, path, io.StringIO())
    table = pq.read_table(path)
    assert table.column_names == names
    read = table.to_pylist()
    assert [r["signal.lookups"] for r in read] == [2.0, 0.5, None]
    assert [r["signal.gave-up"] for r in read] == [True, None, None]
    assert [r["signal.tags"] for r in read] == ['["a", "b"]', "[]", None]
