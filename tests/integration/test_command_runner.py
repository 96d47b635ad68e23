"""The `command` runner with real fake-agent processes: prompt and env substitution, output
formats (streamed or from a file), success checks in the workspace, failures and time limits."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra.runners.base import RunnerError, RunOutcome, RunRequest
from infra.runners.command import CommandRunner, command_argv, resolve_env
from tests.conftest import FIXTURES
from tests.integration.test_workspace_tools import gone, marker

CLAUDE_OUTPUT = FIXTURES / "agent_output" / "claude_stream_json.jsonl"


@pytest.fixture(autouse=True)
def agents_as_this_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """These fake agents are this test's python and scripts in pytest's folders, which the
    unprivileged agent user cannot enter when the tests run as root: they run as this user
    (test_sandbox.py runs agents as the unprivileged user)."""
    monkeypatch.setenv("TPC_AGENT_USER", "root")
    monkeypatch.setenv("TPC_AGENT_ALLOW_ROOT", "1")


class Recorder:
    """A RunProgress that keeps every reported message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


def request(
    agent: dict[str, Any],
    *,
    prompt: str = "Create a customer named Ada.",
    success: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    progress: Recorder | None = None,
    secrets: dict[str, str] | None = None,
) -> RunRequest:
    return RunRequest(
        run_id="run_cmd1",
        task_id="task_1",
        environment_id="env_1",
        repeat=0,
        attempt=1,
        task={"name": "create-customer", "prompt": prompt, "success": success},
        environment={
            "name": "fake agent",
            "agent": {"kind": "command", **agent},
            "limits": limits or {"timeout_s": 60},
        },
        progress=progress or Recorder(),
        secrets=secrets or {},
    )


def script(tmp_path: Path, body: str, name: str = "agent.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def execute(req: RunRequest, runner: CommandRunner | None = None) -> RunOutcome:
    return asyncio.run((runner or CommandRunner()).run(req))


def test_a_claude_agent_streams_its_messages_and_its_work_is_checked(tmp_path: Path) -> None:
    """The fake agent waits, mid-run, for the runner to have reported its first tool result:
    that only happens if the output is parsed while the agent is still running."""
    lines = CLAUDE_OUTPUT.read_text().splitlines()
    agent = script(
        tmp_path,
        f"""
        import json, os, sys, time
        lines = {lines!r}
        for line in lines[:4]:
            print(line, flush=True)
        print(json.dumps({{"type": "user", "message": {{"role": "user", "content": [
            {{"type": "tool_result", "tool_use_id": "toolu_01A9xYz", "content": os.getcwd()}}]}}}}),
            flush=True)
        deadline = time.time() + 30
        while not os.path.exists("ack") and time.time() < deadline:
            time.sleep(0.05)
        if not os.path.exists("ack"):
            sys.exit("never acknowledged: the output was not streamed")
        with open("create_customer.py", "w") as f:
            f.write("prompt: " + sys.argv[1])
        for line in lines[5:]:
            print(line, flush=True)
        """,
    )

    class Acknowledging(Recorder):
        def message(self, message: dict[str, Any]) -> None:
            super().message(message)
            if message["role"] == "tool" and Path(message["content"][0]["content"]).is_dir():
                Path(message["content"][0]["content"], "ack").touch()

    progress = Acknowledging()
    outcome = execute(
        request(
            {
                "command": [sys.executable, agent, "{prompt}"],
                "transcript_format": "claude-stream-json",
            },
            success={
                "command": "grep -q 'prompt: Create a customer named Ada.' create_customer.py"
            },
            progress=progress,
        )
    )
    transcript = outcome.transcript
    assert (outcome.status, outcome.termination_reason) == (None, "completed")
    assert outcome.checks == {"command": True}
    assert (transcript.task_id, transcript.environment_id) == ("task_1", "env_1")
    assert transcript.termination_reason == "completed"
    assert transcript.started_at is not None and transcript.ended_at is not None
    assert transcript.stats.cost == 0.0412635
    assert transcript.stats.duration == 18.342
    assert transcript.stats.model == "claude-sonnet-4-5-20250929"
    assert [m.role for m in transcript.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert progress.messages == [
        m.model_dump(mode="json", exclude_none=True) for m in transcript.messages
    ]


def test_the_prompt_goes_to_stdin_without_a_placeholder_and_env_is_resolved_from_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`${NAME}` comes from the product's secrets in the request; the server's environment
    is neither consulted for it nor passed on."""
    monkeypatch.setenv("KEY_ON_SERVER", "server-value")
    monkeypatch.setenv("SERVER_ONLY", "x")
    agent = script(
        tmp_path,
        """
        import json, os, sys
        prompt = sys.stdin.read()
        print(json.dumps({"messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": os.environ["AGENT_KEY"] + " " + os.environ["LITERAL"]
                + " " + str("SERVER_ONLY" in os.environ)},
        ]}))
        """,
    )
    outcome = execute(
        request(
            {
                "command": f"{sys.executable} '{agent}'",
                "transcript_format": "openai-messages",
                "env": {"AGENT_KEY": "key=${KEY_ON_SERVER}", "LITERAL": "$${HOME}"},
                "model": "gpt-4.1",
            },
            prompt="Say 'hi' & exit",
            secrets={"KEY_ON_SERVER": "sk-123"},
        ),
    )
    texts = [m.content[0].model_dump()["text"] for m in outcome.transcript.messages]
    assert texts == ["Say 'hi' & exit", "key=sk-123 ${HOME} False"]
    assert outcome.transcript.stats.model == "gpt-4.1"
    assert outcome.transcript.stats.duration is not None
    assert outcome.checks == {}


def test_a_missing_secret_is_named_and_the_server_environment_is_never_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TPC_API_TOKEN", "the-operators-token")
    with pytest.raises(RunnerError, match=r"agent env KEY: \$\{MISSING\} is not a secret"):
        resolve_env({"KEY": "${MISSING}"}, {})
    with pytest.raises(RunnerError, match=r"\$\{TPC_API_TOKEN\} is not a secret of this product"):
        resolve_env({"S": "${TPC_API_TOKEN}"}, {})
    assert resolve_env({"S": "${TPC_API_TOKEN}"}, {"TPC_API_TOKEN": "mine"}) == {"S": "mine"}


def test_commands_are_split_like_a_shell_but_never_run_by_one() -> None:
    argv, stdin = command_argv("claude -p {prompt} --output-format 'stream json'", "a; rm -rf /")
    assert argv == ["claude", "-p", "a; rm -rf /", "--output-format", "stream json"]
    assert stdin is None
    assert command_argv(["codex", "exec", "--json"], "p") == (["codex", "exec", "--json"], b"p")
    with pytest.raises(RunnerError, match="cannot be split"):
        command_argv("claude 'unclosed", "p")


def test_a_transcript_file_in_the_workspace_from_a_template(tmp_path: Path) -> None:
    template = tmp_path / "template"
    template.mkdir()
    (template / "README.md").write_text("Acme starter\n")
    transcript = {
        "messages": [{"role": "assistant", "content": "README says: {readme}"}],
        "stats": {"cost": 0.5, "token_in": 10, "token_out": 5},
    }
    agent = script(
        tmp_path,
        f"""
        import json, os
        readme = open("README.md").read().strip()
        os.makedirs("out")
        text = json.dumps({transcript!r}).replace("{{readme}}", readme)
        open("out/transcript.json", "w").write(text)
        print("this stdout is not the transcript")
        """,
    )
    outcome = execute(
        request(
            {
                "command": [sys.executable, agent],
                "workspace": str(template),
                "output_file": "out/transcript.json",
            },
            limits={"timeout_s": 60, "max_cost_usd": 0.25},
        )
    )
    messages = outcome.transcript.messages
    assert [m.role for m in messages] == ["user", "assistant"]  # the prompt was added
    assert messages[1].content[0].model_dump()["text"] == "README says: Acme starter"
    # The agent reported a cost above the environment's budget.
    assert outcome.termination_reason == "budget_exceeded"


def test_an_output_file_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    agent = {"command": ["true"], "output_file": "../transcript.json"}
    with pytest.raises(RunnerError, match="must be a path inside the workspace"):
        execute(request(agent))


def test_a_failing_agent_without_a_transcript_gives_its_stderr(tmp_path: Path) -> None:
    agent = script(
        tmp_path,
        """
        import sys
        print("Error: When using --print, --output-format=stream-json requires --verbose",
              file=sys.stderr)
        sys.exit(1)
        """,
    )
    req = request({"command": [sys.executable, agent], "transcript_format": "claude-stream-json"})
    with pytest.raises(RunnerError) as caught:
        execute(req)
    assert "exited 1 without a transcript" in str(caught.value)
    assert "requires --verbose" in str(caught.value)


def test_an_agent_that_cannot_start_is_a_runner_error() -> None:
    with pytest.raises(RunnerError, match=r"(?s)exited 127.*no-such-agent: cannot run"):
        execute(request({"command": ["no-such-agent", "{prompt}"]}))


def test_malformed_output_names_the_line_and_stops_the_agent(tmp_path: Path) -> None:
    mark = marker()
    agent = script(
        tmp_path,
        f"""
        import subprocess
        print('{{"type": "system", "subtype": "init"}}', flush=True)
        print('{{"type": "assistant", "message": {{"content": 7}}}}', flush=True)
        subprocess.run(["sleep", "{mark}"])
        """,
    )
    req = request({"command": [sys.executable, agent], "transcript_format": "claude-stream-json"})
    with pytest.raises(RunnerError) as caught:
        execute(req)
    assert "claude-stream-json line 2: `message.content` expected an array" in str(caught.value)
    assert gone(mark)


def test_an_agent_error_is_errored_and_max_turns_is_max_steps(tmp_path: Path) -> None:
    result = {"type": "result", "subtype": "success", "is_error": True, "result": "Invalid API key"}
    errored = script(tmp_path, f"print({json.dumps(json.dumps(result))})", "errored.py")
    agent = {"command": [sys.executable, errored], "transcript_format": "claude-stream-json"}
    outcome = execute(request(agent, success={"command": "true"}))
    assert (outcome.status, outcome.termination_reason) == ("errored", "error")
    assert outcome.checks == {}
    last = outcome.transcript.messages[-1]
    assert last.role == "system"
    assert last.content[0].model_dump()["text"] == "[agent error] Invalid API key"

    max_turns = FIXTURES / "agent_output" / "claude_stream_json_max_turns.jsonl"
    agent = {"command": ["cat", str(max_turns)], "transcript_format": "claude-stream-json"}
    outcome = execute(request(agent, success={"command": "false"}))
    assert (outcome.status, outcome.termination_reason) == (None, "max_steps")
    assert outcome.checks == {"command": False}


def test_a_codex_agent_takes_its_model_from_the_definition() -> None:
    codex = FIXTURES / "agent_output" / "codex.jsonl"
    agent = {"command": ["cat", str(codex)], "transcript_format": "codex-jsonl", "model": "gpt-5"}
    outcome = execute(request(agent))
    assert outcome.termination_reason == "completed"
    assert outcome.transcript.stats.model == "gpt-5"
    assert outcome.transcript.stats.token_in == 24763


def hanging_agent(tmp_path: Path, mark: str) -> str:
    return script(
        tmp_path,
        f"""
        import os, subprocess
        open({str(tmp_path / "cwd")!r}, "w").write(os.getcwd())
        subprocess.Popen(["sleep", "{mark}"])
        print('{{"type": "system", "subtype": "init"}}', flush=True)
        subprocess.run(["sleep", "{mark}"])
        """,
    )


def test_cancelled_by_the_executors_time_limit_the_agent_dies_and_its_workspace_goes(
    tmp_path: Path,
) -> None:
    mark = marker()
    agent = {"command": [sys.executable, hanging_agent(tmp_path, mark)]}

    async def go() -> None:
        runner = CommandRunner()
        await asyncio.wait_for(runner.run(request(agent)), timeout=2)

    with pytest.raises(TimeoutError):
        asyncio.run(go())
    assert gone(mark)
    assert not Path((tmp_path / "cwd").read_text()).exists()


def test_the_environments_time_limit_also_stops_the_agent(tmp_path: Path) -> None:
    mark = marker()
    agent = {"command": [sys.executable, hanging_agent(tmp_path, mark)]}
    with pytest.raises(TimeoutError, match="time limit of 1 s"):
        execute(request(agent, limits={"timeout_s": 1}))
    assert gone(mark)
