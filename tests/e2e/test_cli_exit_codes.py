"""The real `tpc`, as a subprocess: every kind of failure exits with its code from the one
table (api/cli/exit_codes.py) and says `error:` the same way."""

from __future__ import annotations

from pathlib import Path

from api.cli.exit_codes import ExitCode
from tests.e2e.test_cli_signals import EXAMPLES, tpc

GOOD = EXAMPLES / "transcripts" / "refund__gpt-nodocs.json"
CONFIG = EXAMPLES / "signals.yaml"


def test_a_missing_transcript_is_unusable_input(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    done = tpc("sim", "signals", "extract", "--signal-config", str(CONFIG), str(GOOD), str(missing))
    assert done.returncode == ExitCode.UNUSABLE_INPUT
    assert f"error: cannot read {missing}: No such file or directory" in done.stderr
    assert "error: 1 of 2 transcripts could not be read" in done.stderr
    assert done.stdout == ""


def test_an_invalid_transcript_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"messages": [{"role": "robot", "content": "x"}]}')
    done = tpc("sim", "signals", "extract", "--signal-config", str(CONFIG), str(broken))
    assert done.returncode == ExitCode.FAILED
    assert "error: 1 of 1 transcript could not be read" in done.stderr


def test_a_missing_signal_config_is_unusable_input(tmp_path: Path) -> None:
    done = tpc("sim", "experiment", "validate-signal-config", str(tmp_path / "none.yaml"))
    assert done.returncode == ExitCode.UNUSABLE_INPUT
    assert "error: cannot read" in done.stderr


def test_usage_errors_say_error_in_lower_case() -> None:
    done = tpc("sim", "signals", "extract", "--no-such-option")
    assert done.returncode == ExitCode.UNUSABLE_INPUT
    assert "Usage: tpc sim signals extract" in done.stderr
    assert "error: No such option '--no-such-option'" in done.stderr
    assert "Error:" not in done.stderr


def test_a_malformed_gate_is_a_usage_error() -> None:
    done = tpc("sim", "experiment", "results", "exp_x", "--fail-on", "score <")
    assert done.returncode == ExitCode.UNUSABLE_INPUT
    assert "error: Invalid value for '--fail-on'" in done.stderr
