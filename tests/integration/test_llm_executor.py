"""llm agents, llm signals and the success judge through the executor and the service on a real
SQLite file, with the real SDKs against the loopback fake."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.executor import Executor
from application.run_execution import NO_JUDGE_IN_SERVER
from application.service import Service
from domain.signals.judging import Judge
from infra.llm.judge import VERDICT_TOOL, LlmJudge
from infra.llm.providers import Providers, ProviderSettings
from infra.llm.retry import RetryPolicy
from infra.runners.llm import LlmRunner
from infra.settings import Settings
from projections.read_models import document
from tests.fakes.provider import FakeProvider, Recorded, Reply, forced, has_tools, serving

SIGNALS = """
version: 1
signals:
  - id: polite
    name: Polite
    type: boolean
    source: assistantText
    extract: {method: llm, prompt: "Is the agent polite?"}
  - id: steps
    name: Steps
    type: number
    extract: {method: stats, stat: steps}
aggregates:
  - {id: polite-rate, signal_id: polite, fn: rate, label: Polite runs}
"""


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


@pytest.fixture
def service(tmp_path: Path, fake: FakeProvider) -> Iterator[Service]:
    # Keys are checked at trigger time: the fake's stand in for the real ones. The agent's
    # `shell` tool and `success.command` run commands: the operator allows them here.
    environ = {**fake.env(), "TPC_ALLOW_COMMANDS": "all"}
    svc = Service(Settings(database_url=f"sqlite:///{tmp_path / 'tpc.db'}"), environ=environ)
    yield svc
    svc.close()


def experiment(
    service: Service,
    task: dict[str, Any],
    agent: dict[str, Any],
    limits: dict[str, Any] | None = None,
    repeats: int = 1,
    config: str | None = SIGNALS,
) -> tuple[str, str]:
    product = service.catalog.bootstrap("token")
    assert product is not None
    owner = product.product_id
    task_id = service.catalog.create_task(owner, task).id
    env_id = service.catalog.create_environment(
        owner, {"name": "Haiku", "agent": agent, "limits": limits or {}}
    ).id
    exp = service.experiments.create_experiment(owner, "LLM", [task_id], [env_id], repeats, config)
    return owner, exp.id


def execute(
    service: Service, fake: FakeProvider, owner: str, exp_id: str, judged: bool = True
) -> list[dict[str, Any]]:
    number = service.experiments.trigger(owner, exp_id).iteration

    async def go() -> None:
        settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
        providers = Providers(settings, environ=fake.env())
        judge: Judge | None = LlmJudge(providers) if judged else None
        executor = Executor(service.runs, {"llm": LlmRunner(providers)}, 4, judge=judge)
        await executor.submit(exp_id, number)
        await executor.drain()
        await providers.aclose()

    asyncio.run(go())
    assert service.views.iteration_status(owner, exp_id, number).status == "completed"
    items = [document(run) for run in service.views.runs(owner, exp_id, number).items]
    return items


AGENT = {"kind": "llm", "provider": "anthropic", "model": "claude-sonnet-4-6", "tools": ["shell"]}
TASK = {
    "name": "hello",
    "prompt": "Create out.txt saying hi, then greet me.",
    "success": {
        "command": "grep -q hi out.txt",
        "judge": {"model": "claude-haiku-4-5", "prompt": "Did the agent greet the user?"},
    },
}


def judge_replies(request: Recorded) -> Reply:
    text = request.last_user_text
    if "Did the agent greet the user?" in text:
        return Reply.tool(
            VERDICT_TOOL, {"answer": True, "excerpt": "Hello there!"}, usage=(900, 30)
        )
    return Reply.tool(VERDICT_TOOL, {"answer": True, "excerpt": "Hello there!"}, usage=(400, 20))


def test_llm_runs_are_judged_and_their_llm_signals_extracted(
    service: Service, fake: FakeProvider
) -> None:
    fake.respond(judge_replies, when=forced(VERDICT_TOOL))
    fake.respond(
        lambda r: (
            Reply.say("Hello there! out.txt is ready.")
            if r.tool_results
            else Reply.tool("shell", {"command": "echo hi > out.txt"})
        ),
        when=has_tools,
    )
    owner, exp_id = experiment(service, TASK, AGENT, repeats=2)
    runs = execute(service, fake, owner, exp_id)

    assert [r["status"] for r in runs] == ["passed", "passed"]
    for run in runs:
        stats = run["stats"]
        assert stats["steps"] == 2 and stats["token_in"] > 0
        assert stats["cost"] > 0 and stats["model"] == "claude-sonnet-4-6"
        assert run["signals"]["polite"] == {
            "value": True,
            "evidence": [{"event": None, "snippet": "Hello there!"}],
        }
        assert run["signals"]["steps"]["value"] == 2
    # Both repeats told the same story: each question went to the judge once, and the run that
    # asked it paid for it, beside (not inside) the agent's cost.
    judged = [r for r in fake.requests if r.forced_tool == VERDICT_TOOL]
    assert len(judged) == 2
    judge_costs = sorted(r["stats"]["judge_cost"] for r in runs)
    assert sum(judge_costs) == pytest.approx((900 + 400) / 1e6 + (30 + 20) * 5 / 1e6)
    assert sum(r["stats"]["judge_token_in"] for r in runs) == 1300
    signals = service.views.signals(owner, exp_id, 1)
    (rate,) = signals["aggregates"]
    assert (rate["id"], rate["value"], rate["n"], rate["missing"]) == ("polite-rate", 1.0, 2, 0)


def test_a_run_fails_when_the_success_judge_says_no(service: Service, fake: FakeProvider) -> None:
    fake.script(
        Reply.tool(VERDICT_TOOL, {"answer": False, "excerpt": "out.txt is ready"}),
        when=forced(VERDICT_TOOL),
        repeat_last=True,
    )
    fake.script(
        Reply.tool("shell", {"command": "echo hi > out.txt"}),
        Reply.say("out.txt is ready."),
        when=has_tools,
    )
    owner, exp_id = experiment(service, TASK, AGENT, config=None)
    (run,) = execute(service, fake, owner, exp_id)
    assert (run["status"], run["termination_reason"], run["error"]) == ("failed", "completed", None)


def test_a_run_that_did_not_complete_fails_without_asking_the_judge(
    service: Service, fake: FakeProvider
) -> None:
    fake.script(Reply.tool("shell", {"command": "echo hi > out.txt"}), when=has_tools)
    owner, exp_id = experiment(service, TASK, {**AGENT, "max_steps": 1}, config=None)
    (run,) = execute(service, fake, owner, exp_id)
    assert (run["status"], run["termination_reason"]) == ("failed", "max_steps")
    assert all(r.forced_tool is None for r in fake.requests)


def test_a_failing_success_judge_errors_the_run(service: Service, fake: FakeProvider) -> None:
    fake.script(Reply.error(400, "bad judge request"), when=forced(VERDICT_TOOL))
    fake.script(Reply.say("Hello!"), when=has_tools)
    owner, exp_id = experiment(service, TASK, AGENT, config=None)
    (run,) = execute(service, fake, owner, exp_id)
    assert run["status"] == "errored"
    assert run["error"] == (
        "the success judge failed: anthropic API error 400: bad judge request "
        "(invalid_request_error)"
    )


def test_without_a_judge_llm_values_are_missing_and_judged_tasks_error(
    service: Service, fake: FakeProvider
) -> None:
    fake.script(Reply.say("Hello there!"), when=has_tools)
    owner, exp_id = experiment(service, TASK, AGENT)
    (run,) = execute(service, fake, owner, exp_id, judged=False)
    assert run["status"] == "errored"
    assert "success criterion 'judge' was not evaluated" in run["error"]
    assert run["signals"]["polite"] == {"value": None, "evidence": [], "error": NO_JUDGE_IN_SERVER}
    assert "judge_cost" not in run["stats"]
    assert all(r.forced_tool is None for r in fake.requests)


def test_a_provider_failure_errors_the_run_with_its_message(
    service: Service, fake: FakeProvider
) -> None:
    fake.script(Reply.tool("shell", {"command": "echo hi > out.txt"}), when=has_tools)
    fake.script(Reply.error(401, "invalid x-api-key"), when=has_tools)
    task = {"name": "t", "prompt": "Make out.txt"}
    owner, exp_id = experiment(service, task, AGENT, config=None)
    (run,) = execute(service, fake, owner, exp_id)
    assert (run["status"], run["termination_reason"]) == ("errored", "error")
    assert run["error"] == "anthropic API error 401: invalid x-api-key (authentication_error)"
    transcript = service.transcripts.transcript(owner, run["id"])
    assert [m["role"] for m in transcript["messages"]] == ["system", "user", "assistant", "tool"]


def test_a_provider_that_never_answers_times_the_run_out(
    service: Service, fake: FakeProvider
) -> None:
    fake.script(Reply.never(), repeat_last=True)
    owner, exp_id = experiment(
        service, {"name": "t", "prompt": "p"}, AGENT, {"timeout_s": 1}, config=None
    )
    (run,) = execute(service, fake, owner, exp_id)
    assert (run["status"], run["termination_reason"]) == ("timed_out", "timeout")
    assert run["error"] == "the run exceeded the time limit of 1 s"


def test_a_timed_out_run_leaves_no_process_or_workspace_behind(
    service: Service, fake: FakeProvider
) -> None:
    # A unique duration marks the command's own processes (the shell and its `sleep`).
    marker = f"119.{uuid.uuid4().int % 10**9:09d}"
    fake.script(Reply.tool("shell", {"command": f"sleep {marker} && echo done"}), when=has_tools)
    agent = {**AGENT, "shell_timeout_s": 600}
    owner, exp_id = experiment(
        service, {"name": "t", "prompt": "p"}, agent, {"timeout_s": 2}, config=None
    )
    (run,) = execute(service, fake, owner, exp_id)
    assert run["status"] == "timed_out"
    assert len(fake.requests) == 1  # the shell command was running when time ran out
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]
    assert not list(Path(tempfile.gettempdir()).glob(f"tpc-{run['id']}-*"))


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
