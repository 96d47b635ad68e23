"""Task and environment files are checked by the real `tpc` before anything is sent, with
every problem reported in one pass (nothing listens at the API address: a request would
fail differently)."""

from __future__ import annotations

from pathlib import Path

from api.cli.exit_codes import ExitCode
from tests.e2e.test_cli_client import CANNOT_REACH, home, tpc

__all__ = ["home"]  # the fixture, shared

BROKEN_ENVIRONMENT = """
agent:
  kind: llm
  provider: anthropic
  model: ""
  tools: [search_docs, fly]
  max_steps: 0
  network: sideways
limits: {timeout_s: -1}
"""


def test_an_environment_missing_its_name_reports_every_other_problem_too(
    home: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(BROKEN_ENVIRONMENT)
    done = tpc("sim", "env", "create", "--file", str(env), home=home)
    assert done.returncode == ExitCode.FAILED
    lines = done.stderr.splitlines()
    assert lines[0] == "error: invalid environment (6 problems; nothing was sent)"
    assert lines[1:] == [
        "  name: required (give --name or set name in the file)",
        "  agent.model: must not be empty",
        "  agent.tools[1]: must be 'search_docs', 'read_doc', 'shell' or 'write_file' (got 'fly')",
        "  agent.network: must be one of none, loopback, full (or true / false), not 'sideways'",
        "  agent.max_steps: must be greater than or equal to 1",
        "  limits.timeout_s: must be greater than 0",
    ]


def test_with_its_name_the_same_file_lists_the_same_five(home: Path, tmp_path: Path) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(BROKEN_ENVIRONMENT)
    done = tpc("sim", "env", "create", "--name", "E", "--file", str(env), home=home)
    assert "error: invalid environment (5 problems; nothing was sent)" in done.stderr
    assert "name:" not in done.stderr


def test_an_empty_file_names_only_the_required_fields(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# to do\n")
    env = tpc("sim", "env", "create", "--file", str(empty), home=home)
    assert env.stderr.splitlines()[1:] == [
        "  name: required (give --name or set name in the file)",
        "  agent: required",
    ]
    task = tpc("sim", "task", "create", "--file", str(empty), home=home)
    assert task.stderr.splitlines()[1:] == [
        "  name: required (give --name or set name in the file)",
        "  prompt: required (give --prompt or set prompt in the file)",
    ]


def test_a_task_file_reports_every_problem(home: Path, tmp_path: Path) -> None:
    task = tmp_path / "task.yaml"
    task.write_text(
        'success:\n  final_answer_regex: "(("\nuser: {model: m, persona: p, max_turns: 0}\n'
    )
    done = tpc("sim", "task", "create", "--name", "t", "--file", str(task), home=home)
    assert done.returncode == ExitCode.FAILED
    assert done.stderr.splitlines()[1:] == [
        "  prompt: required (give --prompt or set prompt in the file)",
        "  success.final_answer_regex: does not compile: missing ): ((",
        "  user.max_turns: must be greater than or equal to 1",
    ]


def test_a_valid_definition_goes_to_the_server(home: Path) -> None:
    done = tpc("sim", "task", "create", "--name", "t", "--prompt", "p", home=home)
    assert CANNOT_REACH in " ".join(done.stderr.split())
