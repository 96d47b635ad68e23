"""The real `tpc` console script, run as a subprocess, on the local signal commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT

EXAMPLES = ROOT / "examples"
TPC = shutil.which("tpc", path=str(Path(os.sys.executable).parent)) or "tpc"


def tpc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [TPC, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False
    )


def tpc_json(*args: str) -> Any:
    done = tpc("--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_valid_config_exits_0_and_says_so() -> None:
    done = tpc("sim", "experiment", "validate-signal-config", str(EXAMPLES / "seed-signals.yaml"))
    assert done.returncode == 0, done.stderr
    assert "is valid: 3 signals, 3 aggregates (sha256:" in done.stdout
    assert done.stderr == ""


def test_invalid_config_exits_1_with_every_located_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (EXAMPLES / "seed-signals.yaml")
        .read_text()
        .replace("    fold:\n      fn: count\n", "")
        .replace("signal_id: total-tokens", "signal_id: total-token")
    )
    done = tpc("sim", "experiment", "validate-signal-config", str(bad))
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"{bad}: signals[0].fold: required for message-scoped signals" in done.stderr
    assert f"{bad}: aggregates[1].signal_id: unknown signal 'total-token'" in done.stderr
    assert "2 problems found" in done.stderr


def test_json_validation_report_goes_to_stdout_alone(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsignals:\n  - {id: x, name: X, type: number, extract: {method: stats}}\n"
    )
    # --format after the subcommand works as well as before it.
    done = tpc("sim", "experiment", "validate-signal-config", str(bad), "--format", "json")
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "valid": False,
        "errors": [{"loc": "signals[0].extract.stat", "message": "required for method 'stats'"}],
        "warnings": [],
        "config_hash": None,
    }


def test_warnings_go_to_stderr_and_do_not_fail(tmp_path: Path) -> None:
    config = tmp_path / "warn.yaml"
    config.write_text(
        (EXAMPLES / "seed-signals.yaml").read_text().replace("claude-haiku-4-5", "gpt-99")
    )
    done = tpc("--format", "json", "sim", "experiment", "validate-signal-config", str(config))
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report["valid"] is True
    assert report["config_hash"].startswith("sha256:")
    assert report["warnings"][0]["loc"] == "signals[2].extract.model"
    assert "unsupported judge model 'gpt-99'" in done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("version: 1\nsignals: [\n", "not valid YAML: line 3")],
)
def test_unreadable_or_non_yaml_file_exits_2(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_text(content)
    done = tpc("sim", "experiment", "validate-signal-config", str(path))
    assert done.returncode == 2
    assert message in done.stderr


def test_schema_is_a_json_schema_naming_every_field() -> None:
    schema = tpc_json("sim", "signals", "schema")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    signal = schema["$defs"]["Signal"]["properties"]
    assert {"id", "name", "type", "scope", "target_role", "fold", "source", "extract"} <= set(
        signal
    )
    assert schema["$defs"]["Where"]["properties"].keys() >= {"eq", "in"}


def test_extract_prints_the_specified_json_shape() -> None:
    transcripts = sorted(str(p) for p in (EXAMPLES / "transcripts").glob("*.json"))
    report = tpc_json(
        "sim", "signals", "extract", "--signal-config", str(EXAMPLES / "signals.yaml"), *transcripts
    )
    assert set(report) == {"experiment_id", "iteration", "config_hash", "aggregates", "runs"}
    assert report["config_hash"].startswith("sha256:")
    aggregate = report["aggregates"][0]
    assert set(aggregate) == {
        "id",
        "signal_id",
        "fn",
        "label",
        "value",
        "n",
        "missing",
        "by_environment",
        "by_task",
        "by_task_environment",
        "ci",  # the 95% interval (docs/results.md)
        "ci_method",
    }
    assert aggregate["id"] == "fabrication-rate"
    assert aggregate["value"] == pytest.approx(2 / 6)
    assert aggregate["ci_method"] == "wilson"
    # Wilson's 95% interval for 2 of 3
    assert aggregate["by_environment"]["gpt-nodocs"] == {
        "value": pytest.approx(2 / 3),
        "n": 3,
        "missing": 0,
        "ci": [pytest.approx(0.2077, abs=1e-4), pytest.approx(0.9385, abs=1e-4)],
        "ci_method": "wilson",
    }
    assert aggregate["by_task_environment"]["install-sdk"]["sonnet-docs"]["value"] == 0
    run = report["runs"][0]
    assert set(run) == {"transcript", "task_id", "environment_id", "status", "signals"}
    assert run["transcript"] == transcripts[0]
    fabricated = run["signals"]["fabricated-endpoint"]
    assert fabricated["value"] == 2
    assert [(e["event"], e["pattern"]) for e in fabricated["evidence"]] == [
        (2, "legacy-v2-api"),
        (4, "legacy-v2-api"),
    ]
    for item in fabricated["evidence"]:
        assert "api.acme.com/v2/" in item["snippet"]
        assert len(item["snippet"]) <= 200
    # Cost was not recorded for this run: it is derived from tokens and the price table.
    assert run["signals"]["cost"]["value"] == pytest.approx(7400 * 2.0 / 1e6 + 1300 * 8.0 / 1e6)


def test_extract_reports_llm_signals_missing_without_a_judge() -> None:
    report = tpc_json(
        "sim",
        "signals",
        "extract",
        "--signal-config",
        str(EXAMPLES / "seed-signals.yaml"),
        str(FIXTURES / "golden_transcript.json"),
    )
    gave_up = report["runs"][0]["signals"]["agent-gave-up"]
    assert gave_up["value"] is None
    assert "no judge was available" in gave_up["error"]
    rate = next(a for a in report["aggregates"] if a["id"] == "give-up-rate")
    assert (rate["value"], rate["n"], rate["missing"]) == (None, 0, 1)


def test_extract_human_output_has_tables_and_evidence() -> None:
    done = tpc(
        "sim",
        "signals",
        "extract",
        "--evidence",
        "--signal-config",
        str(EXAMPLES / "signals.yaml"),
        *sorted(str(p) for p in (EXAMPLES / "transcripts").glob("*.json")),
    )
    assert done.returncode == 0, done.stderr
    for heading in ("Signal aggregates", "By environment", "Runs (6)"):
        assert heading in done.stdout
    assert "Share of runs with fabricated endpoints" in done.stdout
    assert "fabricated-endpoint event 2: I'll call the REST API directly. shell" in done.stdout


def test_malformed_transcripts_are_all_named_and_nothing_is_printed(tmp_path: Path) -> None:
    good = EXAMPLES / "transcripts" / "refund__gpt-nodocs.json"
    broken = tmp_path / "broken.json"
    broken.write_text('{"messages": [{"role": "robot", "content": "x"}]}')
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"messages": [')
    done = tpc(
        "--format",
        "json",
        "sim",
        "signals",
        "extract",
        "--signal-config",
        str(EXAMPLES / "signals.yaml"),
        str(good),
        str(broken),
        str(truncated),
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"{broken}: not a valid tpc transcript: messages[0].role: must be" in done.stderr
    assert f"{truncated}: not a valid tpc transcript: not valid JSON" in done.stderr
    assert "2 of 3 transcripts could not be read" in done.stderr


def test_skip_invalid_extracts_the_rest(tmp_path: Path) -> None:
    good = EXAMPLES / "transcripts" / "refund__gpt-nodocs.json"
    broken = tmp_path / "broken.json"
    broken.write_text("not json")
    done = tpc(
        "--format",
        "json",
        "sim",
        "signals",
        "extract",
        "--skip-invalid",
        "--signal-config",
        str(EXAMPLES / "signals.yaml"),
        str(good),
        str(broken),
    )
    assert done.returncode == 0, done.stderr
    assert [run["transcript"] for run in json.loads(done.stdout)["runs"]] == [str(good)]
    assert f"skipped {broken}" in done.stderr


def test_extract_with_an_invalid_config_exits_1_with_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsignals:\n  - {id: X, name: X, type: number, "
        "extract: {method: stats, stat: cost}}\n"
    )
    done = tpc(
        "sim",
        "signals",
        "extract",
        "--signal-config",
        str(bad),
        str(FIXTURES / "golden_transcript.json"),
    )
    assert done.returncode == 1
    assert "signals[0].id: must be kebab-case" in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    done = tpc("sim", "frobnicate")
    assert done.returncode == 2
    assert "No such command 'frobnicate'" in done.stderr
