"""The real `tpc` console script, run as a subprocess, on recorded agent logs: `transcript
convert` and `signals extract --from` (no server needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from domain.transcripts import parse_transcript
from tests.conftest import FIXTURES, ROOT

CORPUS = FIXTURES / "formats"
EXAMPLES = ROOT / "examples"
TPC = shutil.which("tpc", path=str(Path(sys.executable).parent)) or "tpc"


def tpc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [TPC, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
    )


def test_convert_prints_a_tpc_transcript_and_says_what_it_detected() -> None:
    log = CORPUS / "claude_code_session.jsonl"
    done = tpc("sim", "transcript", "convert", str(log))
    assert done.returncode == 0, done.stderr
    transcript = parse_transcript(done.stdout)
    assert transcript.stats.model == "claude-sonnet-4-5-20250929"
    assert [m.role for m in transcript.messages].count("user") == 2
    assert f"{log}: detected claude-code-session (1 transcript)" in done.stderr


def test_convert_json_lists_every_transcript_with_its_file_and_sample() -> None:
    log = CORPUS / "inspect_log.eval"
    done = tpc(
        "--format", "json", "sim", "transcript", "convert", "--from", "inspect-log", str(log)
    )
    assert done.returncode == 0, done.stderr
    items: list[dict[str, Any]] = json.loads(done.stdout)
    assert [(i["file"], i["sample"], i["format"]) for i in items] == [
        (str(log), "install_epoch_1", "inspect-log"),
        (str(log), "install_epoch_2", "inspect-log"),
        (str(log), "lint_epoch_1", "inspect-log"),
    ]
    assert items[0]["metadata"]["scores"]["includes"]["value"] == "C"
    for item in items:
        parse_transcript(json.dumps(item["transcript"]))
    assert done.stderr == ""  # the format was given: nothing to report


def test_convert_of_several_transcripts_prints_an_array_of_them() -> None:
    done = tpc(
        "sim", "transcript", "convert", str(CORPUS / "tpc.json"), str(CORPUS / "inspect_log.json")
    )
    assert done.returncode == 0, done.stderr
    documents = json.loads(done.stdout)
    assert len(documents) == 4
    assert all(parse_transcript(json.dumps(d)).version == 1 for d in documents)


def test_a_file_of_another_format_exits_1_with_a_located_message_and_prints_nothing() -> None:
    claude = CORPUS / "claude_stream_json.jsonl"
    good = CORPUS / "codex_exec.jsonl"
    done = tpc("sim", "transcript", "convert", "--from", "codex-jsonl", str(good), str(claude))
    assert done.returncode == 1
    assert done.stdout == ""
    stderr = " ".join(done.stderr.split())  # the console wraps long lines
    assert f"{claude}: codex-jsonl line 1: `type` 'system' is not a codex exec --json event" in (
        stderr
    )
    assert "(the file looks like claude-stream-json: try --from claude-stream-json)" in stderr
    assert "1 of 2 files could not be converted" in stderr


def test_an_unknown_format_name_is_a_usage_error() -> None:
    done = tpc("sim", "transcript", "convert", "--from", "yaml", str(CORPUS / "tpc.json"))
    assert done.returncode == 2
    assert "'yaml' is not one of" in done.stderr


def test_signals_extract_reads_agent_logs_of_any_format() -> None:
    logs = [CORPUS / "inspect_log.json", CORPUS / "codex_exec.jsonl", CORPUS / "tpc.json"]
    done = tpc(
        "--format", "json", "sim", "signals", "extract", "--from", "auto",
        "--signal-config", str(EXAMPLES / "signals.yaml"), *map(str, logs),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [run["transcript"] for run in report["runs"]] == [
        f"{logs[0]}#install_epoch_1",
        f"{logs[0]}#install_epoch_2",
        f"{logs[0]}#lint_epoch_1",
        str(logs[1]),
        str(logs[2]),
    ]
    cost = [run["signals"]["cost"]["value"] for run in report["runs"]]
    assert cost[0] is not None and cost[0] > 0  # priced from the sample's tokens
    assert f"{logs[1]}: detected codex-jsonl" in done.stderr


def test_signals_extract_from_a_wrong_format_names_the_file_and_line(tmp_path: Path) -> None:
    session = CORPUS / "rollout-2025-10-29T00-59-38-0199a2d7-41c4-78b1-b7cc-a45d62a89cd5.jsonl"
    done = tpc(
        "--format", "json", "sim", "signals", "extract", "--from", "claude-code-session",
        "--signal-config", str(EXAMPLES / "seed-signals.yaml"), str(session),
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    stderr = " ".join(done.stderr.split())
    assert f"{session}: claude-code-session line 1: expected a Claude Code session line" in stderr
    assert "1 of 1 transcript could not be read" in stderr


def test_convert_reads_standard_input_as_the_file_named_dash() -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [TPC, "sim", "transcript", "convert", "--from", "codex-jsonl", "-"],
        input=(CORPUS / "codex_exec.jsonl").read_text(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert parse_transcript(done.stdout).termination_reason == "completed"
