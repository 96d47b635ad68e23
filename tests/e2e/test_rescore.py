"""`tpc sim experiment rescore` through the real CLI and a real `tpc serve` (SQLite): an llm
agent against the loopback fake provider runs once; re-scoring its iteration with a new signal
config makes the next iteration with the new config's signals and the same run statuses, and
makes no agent call at all (the fake counts them): only the new llm signal's judge is asked,
and a second re-score with the same config asks nobody (the judge's cache). A running
iteration is refused (409) until it is cancelled; its cancelled run, which left no transcript,
stays cancelled with no signals when re-scored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
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
  tools: [search_docs, read_doc]
  docs: ./docs
  max_steps: 5
limits: {timeout_s: 90}
"""
HELLO_TASK = """
name: hello
prompt: Find the Acme greeting in the docs.
success: {final_answer_regex: "Hello from Acme"}
"""
WEBHOOK_TASK = """
name: webhook
prompt: Register a webhook with the Acme SDK.
success: {final_answer_regex: "registered"}
"""
OLD_SIGNALS = """
version: 1
signals:
  - id: docs-lookups
    name: Docs lookups
    type: number
    source: toolCalls
    extract: {method: pattern, needle: "search_docs|read_doc"}
aggregates:
  - {id: lookups, signal_id: docs-lookups, fn: sum, label: Docs lookups}
"""
NEW_SIGNALS = """
version: 1
signals:
  - id: gave-up
    name: Gave up
    type: boolean
    source: assistantText
    extract: {method: llm, prompt: "Did the agent give up on the task?"}
  - id: said-sorry
    name: Said it could not
    type: boolean
    source: assistantText
    extract: {method: pattern, patterns: [{name: could-not, regex: "could not"}]}
aggregates:
  - {id: gave-up-rate, signal_id: gave-up, fn: rate, label: Runs that gave up}
  - {id: could-not-rate, signal_id: said-sorry, fn: rate, label: Runs that could not}
"""
STALL_TASK = """
name: stall
prompt: Wait for the stall to end.
"""
INVALID_SIGNALS = """
version: 1
signals: []
aggregates:
  - {id: nothing, signal_id: fabricated, fn: rate, label: Nothing}
"""


def agent(request: Recorded) -> Reply:
    first = request.messages[0]["content"]
    text = first if isinstance(first, str) else json.dumps(first)
    if "stall" in text:
        return Reply.never()  # runs until cancelled
    step = sum(m["role"] == "assistant" for m in request.messages)
    if "greeting" in text:
        plan = [
            Reply.tool("search_docs", {"query": "greeting"}),
            Reply.say("The greeting is Hello from Acme."),
        ]
    else:
        plan = [
            Reply.tool("search_docs", {"query": "webhook"}),
            Reply.say("I could not find webhooks in the docs, so I give up."),
        ]
    return plan[min(step, len(plan) - 1)]


def judge(request: Recorded) -> Reply:
    gave_up = "I give up" in request.last_user_text or "give up." in request.last_user_text
    return Reply.tool(VERDICT_TOOL, {"answer": gave_up, "excerpt": ""})


def agent_calls(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.forced_tool != VERDICT_TOOL)


def judge_calls(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.forced_tool == VERDICT_TOOL)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.respond(judge, when=forced(VERDICT_TOOL))
        provider.respond(agent, when=has_tools)
        yield provider


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("rescore")
    (home / "docs").mkdir()
    (home / "docs" / "quickstart.md").write_text("The Acme greeting is `Hello from Acme`.\n")
    for name, text in {
        "env.yaml": ENVIRONMENT,
        "hello.yaml": HELLO_TASK,
        "webhook.yaml": WEBHOOK_TASK,
        "old.yaml": OLD_SIGNALS,
        "new.yaml": NEW_SIGNALS,
        "invalid.yaml": INVALID_SIGNALS,
        "stall.yaml": STALL_TASK,
    }.items():
        (home / name).write_text(text)
    return home


@pytest.fixture(scope="module")
def server(home: Path, fake: FakeProvider) -> Iterator[Server]:
    running = Server(home, environ={**fake.env(), "TPC_PROVIDER_MAX_RETRIES": "1"}).start()
    yield running
    running.stop()


def statuses(server: Server, exp_id: str, iteration: int) -> dict[str, str]:
    report = as_json(server, "sim", "experiment", "signals", exp_id, "--iteration", str(iteration))
    return {run["task_id"]: run["status"] for run in report["runs"]}


def test_rescore_makes_the_next_iteration_without_running_agents(
    server: Server, home: Path, fake: FakeProvider
) -> None:
    env = as_json(server, "sim", "env", "create", "--file", str(home / "env.yaml"))
    tasks = [
        as_json(server, "sim", "task", "create", "--file", str(home / name))
        for name in ("hello.yaml", "webhook.yaml")
    ]
    exp_id = as_json(
        server,
        "sim", "experiment", "create", "--name", "Acme",
        "--task-ids", ",".join(t["id"] for t in tasks),
        "--env-ids", env["id"],
        "--signal-config", str(home / "old.yaml"),
    )["id"]  # fmt: skip
    as_json(server, "sim", "experiment", "run", exp_id)
    first = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert first["status"] == "completed" and first["rescore_of"] is None
    assert (first["runs"]["passed"], first["runs"]["failed"]) == (1, 1), first
    before = statuses(server, exp_id, 1)
    old_report = as_json(server, "sim", "experiment", "signals", exp_id, "--iteration", "1")
    agent_before, judge_before = agent_calls(fake), judge_calls(fake)
    assert agent_before > 0 and judge_before == 0  # the old config asks no judge

    started = as_json(
        server, "sim", "experiment", "rescore", exp_id,
        "--iteration", "1", "--signal-config", str(home / "new.yaml"),
    )  # fmt: skip
    assert {k: started[k] for k in ("experiment_id", "iteration", "rescore_of")} == {
        "experiment_id": exp_id,
        "iteration": 2,
        "rescore_of": 1,
    }
    assert started["runs"]["total"] == 2
    done = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert done["iteration"] == 2 and done["status"] == "completed"

    # Zero agent calls; the new llm signal judged each run once.
    assert agent_calls(fake) == agent_before
    assert judge_calls(fake) == judge_before + 2
    assert statuses(server, exp_id, 2) == before
    report = as_json(server, "sim", "experiment", "signals", exp_id, "--iteration", "2")
    assert {a["id"] for a in report["aggregates"]} == {"gave-up-rate", "could-not-rate"}
    by_task = {run["task_id"]: run["signals"] for run in report["runs"]}
    hello, webhook = (by_task[t["id"]] for t in tasks)
    assert (hello["gave-up"]["value"], webhook["gave-up"]["value"]) == (False, True)
    assert (hello["said-sorry"]["value"], webhook["said-sorry"]["value"]) == (False, True)
    # Each run keeps its source's transcript, stats and termination reason.
    old_runs = {run["task_id"]: run["run_id"] for run in old_report["runs"]}
    for run in report["runs"]:
        new = as_json(server, "sim", "run", "get", run["run_id"])
        old = as_json(server, "sim", "run", "get", old_runs[run["task_id"]])
        assert new["termination_reason"] == old["termination_reason"]
        assert new["stats"]["token_in"] == old["stats"]["token_in"]
        assert new["stats"]["judge_cost"] > 0  # the re-score's own judge
        assert (
            as_json(server, "sim", "run", "logs", run["run_id"])["messages"]
            == as_json(server, "sim", "run", "logs", old_runs[run["task_id"]])["messages"]
        )

    # Iteration 1 and the experiment's config are unchanged.
    assert as_json(server, "sim", "experiment", "signals", exp_id, "--iteration", "1") == old_report
    experiment = as_json(server, "sim", "experiment", "get", exp_id)
    assert experiment["signal_config"]["text"] == OLD_SIGNALS

    # Where it shows: results, the iteration list, the audit trail.
    results = as_json(server, "sim", "experiment", "results", exp_id, "--iteration", "2")
    assert results["rescore_of"] == 1
    assert (
        as_json(server, "sim", "experiment", "results", exp_id, "--iteration", "1")["rescore_of"]
        is None
    )
    listed = as_json(server, "sim", "experiment", "iterations", exp_id)
    assert [i["rescore_of"] for i in listed["items"]] == [None, 1]
    history = as_json(server, "sim", "experiment", "history", exp_id)
    assert any("re-score of iteration 1" in e["summary"] for e in history["items"])
    cookies = {"tpc_session": server.dashboard_session()}
    for page in (f"/experiments/{exp_id}", f"/experiments/{exp_id}/iterations/2"):
        html = httpx.get(f"{server.url}{page}", cookies=cookies, timeout=30)
        assert html.status_code == 200 and "re-score of #1" in html.text, page
    first_page = httpx.get(f"{server.url}/experiments/{exp_id}/iterations/1", cookies=cookies)
    assert "re-score of" not in first_page.text

    # The same questions again: the judge's cache answers, no model is called.
    as_json(
        server, "sim", "experiment", "rescore", exp_id,
        "--iteration", "1", "--signal-config", str(home / "new.yaml"),
    )  # fmt: skip
    third = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert third["iteration"] == 3 and third["rescore_of"] == 1
    assert (agent_calls(fake), judge_calls(fake)) == (agent_before, judge_before + 2)

    # An invalid config is refused with its located problems; nothing is created.
    refused = server.tpc(
        "sim", "experiment", "rescore", exp_id, "--iteration", "1",
        "--signal-config", str(home / "invalid.yaml"),
    )  # fmt: skip
    assert refused.returncode == 1
    assert "aggregates[0].signal_id" in refused.stderr
    assert as_json(server, "sim", "experiment", "get", exp_id)["iterations"] == 3


def test_rescore_of_an_unknown_iteration_is_not_found(server: Server, home: Path) -> None:
    env = as_json(server, "sim", "env", "create", "--file", str(home / "env.yaml"))
    task = as_json(server, "sim", "task", "create", "--file", str(home / "hello.yaml"))
    exp_id = as_json(
        server, "sim", "experiment", "create", "--name", "x",
        "--task-ids", task["id"], "--env-ids", env["id"],
    )["id"]  # fmt: skip
    with server.client() as client:
        answer = client.post(f"/v1/experiments/{exp_id}/iterations/1/rescore", json={})
    assert answer.status_code == 404


def test_a_running_iteration_is_rescored_only_once_it_is_cancelled(
    server: Server, home: Path
) -> None:
    env = as_json(server, "sim", "env", "create", "--file", str(home / "env.yaml"))
    task = as_json(server, "sim", "task", "create", "--file", str(home / "stall.yaml"))
    exp_id = as_json(
        server, "sim", "experiment", "create", "--name", "stalled",
        "--task-ids", task["id"], "--env-ids", env["id"],
        "--signal-config", str(home / "new.yaml"),
    )["id"]  # fmt: skip
    as_json(server, "sim", "experiment", "run", exp_id)
    with server.client() as client:
        answer = client.post(f"/v1/experiments/{exp_id}/iterations/1/rescore", json={})
    assert answer.status_code == 409, answer.text
    assert "still running" in answer.json()["error"]["message"]
    refused = server.tpc("sim", "experiment", "rescore", exp_id, "--iteration", "1")
    assert refused.returncode == 1 and "still running" in refused.stderr
    assert as_json(server, "sim", "experiment", "get", exp_id)["iterations"] == 1

    as_json(server, "sim", "experiment", "run", "cancel", exp_id, "--iteration", "1")
    cancelled = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert cancelled["status"] == "cancelled" and cancelled["runs"]["cancelled"] == 1

    # The cancelled run left no transcript: re-scored, it stays cancelled, with no signals.
    started = as_json(server, "sim", "experiment", "rescore", exp_id, "--iteration", "1")
    assert (started["iteration"], started["rescore_of"]) == (2, 1)
    done = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert done["status"] == "completed" and done["runs"]["cancelled"] == 1
    report = as_json(server, "sim", "experiment", "signals", exp_id, "--iteration", "2")
    assert [run["signals"] for run in report["runs"]] == [{}]
