"""The `llm` runner: the agent loop over the real SDKs against the loopback fake, with real
per-run workspaces and tools."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.llm.chat import Provider
from infra.llm.providers import Providers, ProviderSettings
from infra.llm.retry import RetryPolicy
from infra.runners.base import RunnerError, RunOutcome, RunRequest
from infra.runners.llm import AgentFailed, LlmRunner
from tests.fakes.provider import FakeProvider, Recorded, Reply, api, has_tools, serving

MODELS: dict[Provider, str] = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    template, docs = tmp_path / "template", tmp_path / "docs"
    template.mkdir()
    (template / "README.md").write_text("Say hello from Python.\n")
    (docs / "guides").mkdir(parents=True)
    (docs / "guides" / "quickstart.md").write_text(
        "# Quickstart\n\nInstall the SDK: pip install acme\n"
    )
    return template, docs


class Progress:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


def agent(provider: Provider = "anthropic", **fields: Any) -> dict[str, Any]:
    return {"kind": "llm", "provider": provider, "model": MODELS[provider], **fields}


def request(
    agent: dict[str, Any],
    task: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> RunRequest:
    return RunRequest(
        run_id="run_llmtest",
        task_id="task_1",
        environment_id="env_1",
        repeat=0,
        attempt=1,
        task=task or {"name": "hello", "prompt": "Write hello.py that prints hi, and run it."},
        environment={"name": "Agent", "agent": agent, "limits": limits or {}},
        **({"progress": progress} if progress else {}),
    )


def run(
    fake: FakeProvider, run_request: RunRequest, env: dict[str, str] | None = None
) -> RunOutcome:
    async def go() -> RunOutcome:
        settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
        providers = Providers(settings, environ=fake.env() if env is None else env)
        try:
            return await LlmRunner(providers).run(run_request)
        finally:
            await providers.aclose()

    return asyncio.run(go())


def roles(outcome: RunOutcome) -> list[str]:
    return [m.role for m in outcome.transcript.messages]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_the_agent_completes_a_task_with_its_tools(
    fake: FakeProvider, folders: tuple[Path, Path], provider: Provider
) -> None:
    template, docs = folders
    fake.script(
        Reply.tool("search_docs", {"query": "install sdk"}, text="Checking the docs."),
        Reply.tool("write_file", {"path": "hello.py", "content": "print('hi')\n"}),
        Reply.tool("shell", {"command": "python3 hello.py > out.txt && cat out.txt"}),
        Reply.say("Done: hello.py prints hi."),
        when=has_tools,
    )
    progress = Progress()
    task = {
        "name": "hello",
        "prompt": "Write hello.py that prints hi, and run it.",
        "success": {"command": "grep -q hi out.txt && test -f README.md"},
    }
    environment = agent(
        provider,
        workspace=str(template),
        docs=str(docs),
        tools=["search_docs", "write_file", "shell"],
    )
    outcome = run(fake, request(environment, task, progress=progress))

    assert outcome.status is None  # the executor judges it
    assert outcome.termination_reason == "completed"
    assert outcome.checks == {"command": True}
    transcript = outcome.transcript
    assert roles(outcome) == ["system", "user"] + ["assistant", "tool"] * 3 + ["assistant"]
    assert transcript.messages[1].content[0].text == task["prompt"]  # type: ignore[union-attr]
    call = transcript.messages[2].content[1]
    assert (call.type, call.name, call.input) == (  # type: ignore[union-attr]
        "tool_call",
        "search_docs",
        {"query": "install sdk"},
    )
    results = [m.content[0] for m in transcript.messages if m.role == "tool"]
    assert "guides/quickstart.md" in results[0].content  # type: ignore[union-attr]
    assert "hi" in results[2].content and not results[2].is_error  # type: ignore[union-attr]
    assert transcript.termination_reason == "completed"
    assert transcript.stats.model == MODELS[provider]
    assert (transcript.stats.token_in or 0) > 0 and (transcript.stats.cost or 0) > 0
    assert (transcript.stats.duration or 0) > 0
    # Every message was reported as it happened.
    assert [m["role"] for m in progress.messages] == roles(outcome)
    sent = fake.requests
    assert len(sent) == 4
    assert sent[0].tool_names == ["search_docs", "write_file", "shell"]
    assert sent[0].system.startswith("You are a developer")
    assert "hi" in sent[3].tool_results[0]  # the shell's output went back to the model


def test_a_failing_command_criterion_is_reported(fake: FakeProvider) -> None:
    fake.script(Reply.say("I did nothing."))
    task = {"name": "t", "prompt": "Make out.txt", "success": {"command": "test -f out.txt"}}
    outcome = run(fake, request(agent(tools=["shell"]), task))
    assert outcome.checks == {"command": False}


def test_thinking_is_kept_in_the_transcript(fake: FakeProvider) -> None:
    fake.script(Reply.say("All set.", thinking="Nothing to do here."))
    outcome = run(fake, request(agent()))
    blocks = outcome.transcript.messages[-1].content
    assert [b.type for b in blocks] == ["thinking", "text"]
    assert blocks[0].thinking == "Nothing to do here."  # type: ignore[union-attr]


def test_a_run_ends_after_max_steps(fake: FakeProvider) -> None:
    fake.script(Reply.tool("shell", {"command": "true"}), repeat_last=True)
    outcome = run(fake, request(agent(tools=["shell"], max_steps=3)))
    assert outcome.termination_reason == "max_steps"
    assert roles(outcome).count("assistant") == 3
    assert len(fake.requests) == 3


def test_a_run_ends_when_it_spends_more_than_its_budget(fake: FakeProvider) -> None:
    # claude-haiku-4-5: $1 / $5 per million tokens -> $0.0025 per response here.
    fake.script(Reply.tool("shell", {"command": "true"}, usage=(2000, 100)), repeat_last=True)
    outcome = run(fake, request(agent(tools=["shell"]), limits={"max_cost_usd": 0.01}))
    assert outcome.termination_reason == "budget_exceeded"
    assert len(fake.requests) == 5  # 4 responses cost exactly the budget; the 5th exceeds it
    assert outcome.transcript.stats.cost == pytest.approx(0.0125)


def test_a_budget_needs_a_priced_model(fake: FakeProvider) -> None:
    unpriced = {"kind": "llm", "provider": "openai", "model": "my-local-model"}
    with pytest.raises(RunnerError, match="'my-local-model' has no price"):
        run(fake, request(unpriced, limits={"max_cost_usd": 1}))
    assert fake.requests == []


def test_a_simulated_user_talks_until_satisfied(fake: FakeProvider) -> None:
    fake.script(
        Reply.say("Which language should the script use?"),
        Reply.say("Here it is: print('hi') in Python."),
        when=has_tools,
    )
    answers = iter(["Python, please.", "DONE"])

    def user(sent: Recorded) -> Reply:
        return Reply.say(next(answers), usage=(300, 10))

    fake.respond(user, when=api("openai"))
    task = {
        "name": "hello",
        "prompt": "I need a hello script.",
        "user": {"model": "gpt-4.1-nano", "persona": "A terse Python developer.", "max_turns": 3},
    }
    outcome = run(fake, request(agent(tools=["shell"]), task))
    assert outcome.termination_reason == "completed"
    users = [m.content[0].text for m in outcome.transcript.messages if m.role == "user"]  # type: ignore[union-attr]
    assert users == ["I need a hello script.", "Python, please."]
    persona = fake.requests_for("openai")
    assert len(persona) == 2
    assert "A terse Python developer." in persona[0].system
    assert "Which language should the script use?" in persona[0].last_user_text
    assert persona[0].body.get("tools") is None  # the user never sees the tools
    stats = outcome.transcript.stats.model_extra or {}
    assert stats["user_token_in"] == 600
    assert stats["user_cost"] == pytest.approx(2 * (300 * 0.10 + 10 * 0.40) / 1e6)
    # The agent's own cost does not include the simulated user's.
    assert outcome.transcript.stats.model == "claude-haiku-4-5"


def test_a_simulated_user_speaks_at_most_max_turns_times(fake: FakeProvider) -> None:
    fake.script(Reply.say("Anything else?"), when=has_tools, repeat_last=True)
    fake.script(Reply.say("One more thing."), when=api("openai"), repeat_last=True)
    task = {
        "name": "t",
        "prompt": "Help",
        "user": {"model": "gpt-4o-mini", "persona": "p", "max_turns": 2},
    }
    outcome = run(fake, request(agent(tools=["shell"]), task))
    assert outcome.termination_reason == "completed"
    assert roles(outcome).count("user") == 3  # the instruction and two replies


def test_a_provider_failure_errors_the_run_and_keeps_what_happened(fake: FakeProvider) -> None:
    fake.script(
        Reply.tool("shell", {"command": "echo step one"}), Reply.error(400, "prompt is too long")
    )
    with pytest.raises(AgentFailed) as failed:
        run(fake, request(agent(tools=["shell"])))
    assert str(failed.value) == (
        "anthropic API error 400: prompt is too long (invalid_request_error)"
    )
    kept = failed.value.transcript
    assert [m.role for m in kept.messages] == ["system", "user", "assistant", "tool"]
    assert kept.termination_reason == "error"


def test_a_missing_key_is_a_clear_runner_error(fake: FakeProvider) -> None:
    with pytest.raises(RunnerError, match=r"^OPENAI_API_KEY is not set"):
        run(fake, request(agent("openai")), env={"ANTHROPIC_API_KEY": "k"})


def test_a_shell_network_beyond_the_operators_cap_errors_before_the_first_step(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPC_AGENT_NETWORK_MAX", "loopback")
    fake.script(Reply.tool("shell", {"command": "true"}), repeat_last=True)
    with pytest.raises(RunnerError, match="TPC_AGENT_NETWORK_MAX=loopback"):
        run(fake, request(agent(tools=["shell"], network=True)))
    assert fake.requests == []
    # Without the shell tool the agent runs no commands: its `network` does not matter.
    fake.reset()
    fake.script(Reply.say("Nothing to run."))
    outcome = run(fake, request(agent(tools=["search_docs"], network=True)))
    assert outcome.termination_reason == "completed"
