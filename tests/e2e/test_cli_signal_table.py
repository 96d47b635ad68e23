"""`tpc sim signals extract` as a table says what its JSON says: every value of every run on
the row of its signal, whatever the value's type and however narrow the terminal."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from api.cli.signals_view import format_value
from tests.conftest import ROOT
from tests.e2e.test_cli_signals import TPC

EXAMPLES = ROOT / "examples"
# An llm signal has no judge offline: its value is reported missing.
LLM_SIGNAL = """
  - id: gave-up
    name: "Gave up"
    type: boolean
    extract:
      method: llm
      source: finalAnswer
      model: claude-haiku-4-5
      prompt: Did the agent give up?
"""


def _config(tmp_path: Path) -> Path:
    text = (EXAMPLES / "signals.yaml").read_text()
    config = tmp_path / "signals.yaml"
    config.write_text(text.replace("\naggregates:\n", LLM_SIGNAL + "\naggregates:\n"))
    return config


def _extract(config: Path, columns: int, *extra: str) -> subprocess.CompletedProcess[str]:
    transcripts = sorted(str(path) for path in (EXAMPLES / "transcripts").glob("*.json"))
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [TPC, *extra, "sim", "signals", "extract", "--signal-config", str(config), *transcripts],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _runs_table(stdout: str) -> dict[tuple[str, str], str]:
    """(run, signal) -> the value cell, continuation lines of a folded value joined."""
    lines = stdout[stdout.index("Runs (") :].splitlines()
    cells: dict[tuple[str, str], str] = {}
    run = signal = ""
    for line in lines:
        if not line.startswith("│"):
            continue
        parts = [part.strip() for part in line.strip("│").split("│")]
        if parts[0] == "run":
            continue
        run_cell, signal_cell, value_cell = parts[0], parts[4], parts[5]
        if run_cell:
            run = run_cell
        if signal_cell:
            signal = signal_cell
            cells[(run, signal)] = value_cell
        else:  # a folded value goes on under its signal
            cells[(run, signal)] += value_cell
    return cells


def _expected(runs: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {
        (Path(run["transcript"]).stem, signal_id): (
            "missing" if item.get("error") else format_value(item["value"])
        )
        for run in runs
        for signal_id, item in run["signals"].items()
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    config = _config(tmp_path_factory.mktemp("table"))
    done = _extract(config, 200, "--format", "json")
    assert done.returncode == 0, done.stderr
    return config, json.loads(done.stdout)


def test_the_example_covers_every_value_type(report: tuple[Path, dict[str, Any]]) -> None:
    kinds = {
        "missing" if item.get("error") else type(item["value"]).__name__
        for run in report[1]["runs"]
        for item in run["signals"].values()
    }
    assert {"bool", "int", "float", "str", "dict", "missing"} <= kinds


def test_every_value_is_on_its_signals_row(report: tuple[Path, dict[str, Any]]) -> None:
    config, document = report
    done = _extract(config, 200)
    assert done.returncode == 0, done.stderr
    assert _runs_table(done.stdout) == _expected(document["runs"])


def test_a_narrow_terminal_folds_values_without_shifting_rows(
    report: tuple[Path, dict[str, Any]],
) -> None:
    config, document = report
    done = _extract(config, 80)
    assert done.returncode == 0, done.stderr
    shown = _runs_table(done.stdout)
    expected = _expected(document["runs"])
    # Folding may break a value anywhere; once whitespace is ignored it is the same value.
    assert {key: "".join(value.split()) for key, value in shown.items()} == {
        key: "".join(value.split()) for key, value in expected.items()
    }


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "—"),
        (True, "true"),
        (3, "3"),
        (0.25, "0.25"),
        (24300.0, "24,300"),
        ("end_turn", "end_turn"),
        ("two\nlines", "two lines"),
        ({"false": 3, "true": 1}, "false 3, true 1"),
        ([1, "a"], "[1, a]"),
    ],
)
def test_every_value_type_renders_on_one_line(value: Any, shown: str) -> None:
    assert format_value(value) == shown
