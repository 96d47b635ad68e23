"""An `llm` agent environment through a real `tpc serve` subprocess: the agent uses its tools in
per-run workspaces against the loopback fake provider (ANTHROPIC_BASE_URL), task success is
checked by command and judge, and an llm signal is judged, extracted and aggregated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.llm.judge import VERDICT_TOOL
from tests.e2e.server import Server, as_json
from tests.fakes.provider import FakeProvider, Recorded, Reply, forced, has_tools

ENVIRONMENT = """
name: Claude + docs
agent:
  kind: llm
  provider: anthropic
  model: claude-sonnet-4-6
  system_prompt: You are a developer trying the Acme SDK.
  tools: [search_docs, read_doc, write_file, shell]
  docs: ./docs
  workspace: ./template
  max_steps: 10
limits: {timeout_s: 90, max_cost_usd: 1.0}
"""
HELLO_TASK = """
name: hello-script
prompt: Write hello.py with the Acme greeting from the docs and run it.
success:
  command: python3 hello.py | grep -q "Hello from Acme"
  judge:
    model: claude-haiku-4-5
    prompt: Did the agent run the script successfully?
"""
WEBHOOK_TASK = """
name: webhook
prompt: Register a webhook with the Acme SDK.
success:
  command: test -f webhook.py
"""
SIGNALS = """
version: 1
signals:
  - id: gave-up
    name: Gave up
    type: boolean
    source: assistantText
    extract: {method: llm, prompt: "Did the agent give up on the task?"}
  - id: docs-lookups
    name: Docs lookups
    type: number
    source: toolCalls
    extract: {method: pattern, needle: "(?m)^(search_docs|read_doc) "}
aggregates:
  - {id: gave-up-rate, signal_id: gave-up, fn: rate, label: Runs that gave up}
  - {id: lookups, signal_id: docs-lookups, fn: sum, label: Docs lookups}
"""
HELLO_PLAN = [
    Reply.tool("search_docs", {"query": "greeting"}, text="Let me find the greeting."),
    Reply.tool("read_doc", {"path": "quickstart.md"}),
    Reply.tool("write_file", {"path": "hello.py", "content": 'print("Hello from Acme")\n'}),
    Reply.tool("shell", {"command": "python3 hello.py"}),
    Reply.say("Done: hello.py prints the Acme greeting."),
]
WEBHOOK_PLAN = [
    Reply.tool("search_docs", {"query": "webhook"}),
    Reply.say("I could not find anything about webhooks in the docs, so I give up."),
]


def agent(request: Recorded) -> Reply:
    """The scripted agent: the plan for the task in the first message, one step per response."""
    first = request.messages[0]["content"]
    text = first if isinstance(first, str) else json.dumps(first)
    plan = HELLO_PLAN if "hello.py" in text else WEBHOOK_PLAN
    step = sum(m["role"] == "assistant" for m in request.messages)
    return plan[min(step, len(plan) - 1)]


def judge(request: Recorded) -> Reply:
    text = request.last_user_text
    if "give up" in text.split("<text>")[0]:
        gave_up = "I give up" in text or "give up." in text
        excerpt = "so I give up." if gave_up else "Done: hello.py prints the Acme greeting."
        return Reply.tool(VERDICT_TOOL, {"answer": gave_up, "excerpt": excerpt})
    return Reply.tool(VERDICT_TOOL, {"answer": True, "excerpt": "Hello from Acme"})


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.respond(judge, when=forced(VERDICT_TOOL))
        provider.respond(agent, when=has_tools)
        yield provider


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("llm")
    (home / "docs").mkdir()
    (home / "docs" / "quickstart.md").write_text(
        "# Quickstart\n\nThe Acme greeting is `Hello from Acme`.\n"
    )
    (home / "template").mkdir()
    (home / "template" / "README.md").write_text("An empty project.\n")
    for name, text in {
        "env.yaml": ENVIRONMENT,
        "hello.yaml": HELLO_TASK,
        "webhook.yaml": WEBHOOK_TASK,
        "signals.yaml": SIGNALS,
    }.items():
        (home / name).write_text(text)
    return home


@pytest.fixture(scope="module")
def server(home: Path, fake: FakeProvider) -> Iterator[Server]:
    # The agent's `shell` tool and the tasks' `success.command` need the operator's consent.
    environ = {**fake.env(), "TPC_PROVIDER_MAX_RETRIES": "1", "TPC_ALLOW_COMMANDS": "all"}
    running = Server(home, environ=environ).start()
    yield running
    running.stop()


def test_an_llm_agent_experiment_end_to_end(server: Server, home: Path, fake: FakeProvider) -> None:
    env = as_json(server, "sim", "env", "create", "--file", str(home / "env.yaml"))
    assert env["agent"]["docs"] == str(home / "docs")
    tasks = [
        as_json(server, "sim", "task", "create", "--file", str(home / name))
        for name in ("hello.yaml", "webhook.yaml")
    ]
    created = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        "Claude on Acme",
        "--task-ids",
        ",".join(t["id"] for t in tasks),
        "--env-ids",
        env["id"],
        "--signal-config",
        str(home / "signals.yaml"),
    )
    exp_id = created["id"]
    as_json(server, "sim", "experiment", "run", exp_id)
    status = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert status["status"] == "completed"
    assert status["runs"]["passed"] == 1 and status["runs"]["failed"] == 1, status

    signals = as_json(server, "sim", "experiment", "signals", exp_id)
    aggregates = {a["id"]: a for a in signals["aggregates"]}
    gave_up = aggregates["gave-up-rate"]
    assert (gave_up["value"], gave_up["n"], gave_up["missing"]) == (0.5, 2, 0)
    assert aggregates["lookups"]["value"] == 3
    by_task = {r["task_id"]: r for r in signals["runs"]}
    hello, webhook = (by_task[t["id"]] for t in tasks)
    assert hello["status"] == "passed" and webhook["status"] == "failed"
    assert webhook["signals"]["gave-up"] == {
        "value": True,
        "evidence": [{"event": None, "snippet": "so I give up."}],
    }
    assert hello["signals"]["gave-up"]["value"] is False

    run = as_json(server, "sim", "run", "get", hello["run_id"])
    assert run["termination_reason"] == "completed"
    stats = run["stats"]
    assert stats["model"] == "claude-sonnet-4-6" and stats["steps"] == 5
    assert stats["cost"] > 0 and stats["judge_cost"] > 0 and stats["judge_token_in"] > 0
    transcript = as_json(server, "sim", "run", "logs", hello["run_id"])
    calls = [
        block["name"]
        for message in transcript["messages"]
        if message["role"] == "assistant" and isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_call"
    ]
    assert calls == ["search_docs", "read_doc", "write_file", "shell"]
    results = [m for m in transcript["messages"] if m["role"] == "tool"]
    assert "Hello from Acme" in json.dumps(results[-1])

    # Every model call went to the fake: the agent's, the success judge's and the signal's.
    assert {r.api for r in fake.requests} == {"anthropic"}
    judged = [r for r in fake.requests if r.forced_tool == VERDICT_TOOL]
    assert len(judged) == 3  # gave-up for both runs, success for the hello run
    # With the server's key (this SDK version sends it as a bearer token).
    keys = {r.headers.get("x-api-key") or r.headers.get("authorization") for r in fake.requests}
    assert keys <= {"test-key", "Bearer test-key"}
