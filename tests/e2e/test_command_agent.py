"""A `command` environment end to end: the real CLI creates it from a YAML file, a real
`tpc serve` runs a fake agent CLI (a Python script printing Claude Code's stream-json and
writing a file) in a fresh workspace per run, as the unprivileged agent user when the server
is root, and the iteration completes with the agent's stats and the task's `command`
criterion checked in that workspace."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.server import Server, as_json

# What the fake agent prints: Claude Code's lines, with the prompt and cost it was given.
FAKE_AGENT = """
import json, os, sys

prompt = sys.argv[1]
said = f"Writing the answer as uid {os.getuid()}."
cost = float(os.environ["AGENT_COST"])
with open("answer.txt", "w") as f:
    f.write(open("template.txt").read().strip() + ": " + prompt)

def emit(**line):
    print(json.dumps(line), flush=True)

emit(type="system", subtype="init", cwd=os.getcwd(), session_id="s1", tools=["Bash", "Write"],
     model="claude-sonnet-4-5", permissionMode="bypassPermissions", apiKeySource="none")
emit(type="assistant", message={"id": "msg_1", "type": "message", "role": "assistant",
     "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": said}],
     "usage": {"input_tokens": 100, "output_tokens": 10}}, parent_tool_use_id=None)
emit(type="assistant", message={"id": "msg_1", "type": "message", "role": "assistant",
     "model": "claude-sonnet-4-5", "content": [{"type": "tool_use", "id": "toolu_1",
     "name": "Write", "input": {"file_path": "answer.txt", "content": prompt}}],
     "usage": {"input_tokens": 100, "output_tokens": 10}}, parent_tool_use_id=None)
emit(type="user", message={"role": "user", "content": [{"type": "tool_result",
     "tool_use_id": "toolu_1", "content": "File created successfully"}]}, parent_tool_use_id=None)
emit(type="assistant", message={"id": "msg_2", "type": "message", "role": "assistant",
     "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "Done: answer.txt"}],
     "usage": {"input_tokens": 150, "output_tokens": 5}}, parent_tool_use_id=None)
emit(type="result", subtype="success", is_error=False, duration_ms=1500, num_turns=2,
     result="Done: answer.txt", session_id="s1", total_cost_usd=cost,
     usage={"input_tokens": 250, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": 15})
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("command-agent")


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    # The operator lets products run commands; `${AGENT_COST}` is the product's secret.
    running = Server(home, environ={"TPC_ALLOW_COMMANDS": "all"}).start()
    yield running
    running.stop()


def test_a_command_environment_runs_an_agent_cli_end_to_end(server: Server, home: Path) -> None:
    with server.client() as client:
        client.put("/v1/secrets/AGENT_COST", json={"value": "0.0125"}).raise_for_status()
    template = home / "template"
    template.mkdir()
    (template / "template.txt").write_text("from the template\n")
    # In the template, so the agent user (who cannot enter pytest's folders) can read it.
    (template / "fake_claude.py").write_text(textwrap.dedent(FAKE_AGENT))
    env_file = home / "env.yaml"
    env_file.write_text(
        yaml.safe_dump(
            {
                "name": "fake claude code",
                "agent": {
                    "kind": "command",
                    "command": [sys.executable, "fake_claude.py", "{prompt}"],
                    "transcript_format": "claude-stream-json",
                    "workspace": str(template),
                    "env": {"AGENT_COST": "${AGENT_COST}"},
                },
                "limits": {"timeout_s": 60},
            }
        )
    )
    task_file = home / "task.yaml"
    task_file.write_text(
        yaml.safe_dump(
            {
                "name": "write-answer",
                "prompt": "Write the answer to answer.txt",
                "success": {
                    "command": "grep -qx 'from the template: Write the answer to answer.txt' "
                    "answer.txt",
                    "final_answer_regex": "Done",
                },
            }
        )
    )
    environment = as_json(server, "sim", "env", "create", "--file", str(env_file))
    assert environment["agent"]["kind"] == "command"
    task = as_json(server, "sim", "task", "create", "--file", str(task_file))
    experiment = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        "Command agent",
        "--task-ids",
        task["id"],
        "--env-ids",
        environment["id"],
        "--repeats",
        "2",
    )
    as_json(server, "sim", "experiment", "run", experiment["id"])
    status = as_json(server, "sim", "experiment", "run", "status", experiment["id"], "--watch")
    assert status["status"] == "completed"
    assert status["runs"]["total"] == 2
    assert status["runs"]["passed"] == 2, server.log.read_text()[-3000:]

    runs = as_json(server, "sim", "experiment", "runs", experiment["id"])["items"]
    assert len(runs) == 2
    for run in runs:
        assert (run["status"], run["termination_reason"]) == ("passed", "completed")
        stats = run["stats"]
        assert stats["cost"] == 0.0125
        assert (stats["steps"], stats["turns"], stats["tool_calls"]) == (2, 1, 1)
        assert (stats["token_in"], stats["token_out"]) == (250, 15)
        assert stats["duration"] == 1.5
        assert stats["model"] == "claude-sonnet-4-5"

    transcript = as_json(server, "sim", "run", "logs", runs[0]["id"])
    assert transcript["task_id"] == task["id"]
    assert transcript["environment_id"] == environment["id"]
    assert [m["role"] for m in transcript["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert transcript["messages"][0]["content"][0]["text"] == "Write the answer to answer.txt"
    agent_uid = 65534 if os.geteuid() == 0 else os.geteuid()  # the default TPC_AGENT_USER
    said = transcript["messages"][1]["content"][0]["text"]
    assert said == f"Writing the answer as uid {agent_uid}."
    assert transcript["final_answer"] == "Done: answer.txt"

    results = as_json(server, "sim", "experiment", "results", experiment["id"])
    assert results["summary"]["score"] == 1.0
    [row] = results["summary"]["environments"]
    assert row["mean_cost"] == pytest.approx(0.0125)
