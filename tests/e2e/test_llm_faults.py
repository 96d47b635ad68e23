"""Provider faults through a real `tpc serve`, with the real openai SDK against the loopback
fake: a 429 storm and a 500 are retried (honouring Retry-After) and the run still passes; a
provider that never answers ends the run `timed_out` at the environment's time limit; an
agent whose key the server lacks is refused at trigger time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Server, as_json
from tests.fakes.provider import FakeProvider, Reply, model

ENVIRONMENT = """
name: {name}
agent:
  kind: llm
  provider: openai
  model: {model}
  tools: []
  max_steps: 3
limits: {{timeout_s: {timeout}}}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: FakeProvider) -> Iterator[Server]:
    environ = {**fake.env(), "TPC_PROVIDER_MAX_RETRIES": "5"}
    running = Server(tmp_path_factory.mktemp("faults"), environ=environ).start()
    yield running
    running.stop()


def experiment(server: Server, name: str, model_id: str, timeout: float) -> str:
    env_file = server.home / f"{name}.yaml"
    env_file.write_text(ENVIRONMENT.format(name=name, model=model_id, timeout=timeout))
    env = as_json(server, "sim", "env", "create", "--file", str(env_file))
    task = as_json(server, "sim", "task", "create", "--name", name, "--prompt", "Say hello.")
    created = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        name,
        "--task-ids",
        task["id"],
        "--env-ids",
        env["id"],
    )
    exp_id: str = created["id"]
    return exp_id


def test_a_429_storm_and_a_500_are_retried(server: Server, fake: FakeProvider) -> None:
    fake.script(
        Reply.rate_limited(retry_after=0.2),
        Reply.rate_limited(retry_after=0.2),
        Reply.rate_limited(retry_after_ms=100),
        Reply.server_error(),
        Reply.say("Hello! Done."),
        when=model("gpt-4.1-mini"),
    )
    exp_id = experiment(server, "stormy", "gpt-4.1-mini", timeout=60)
    as_json(server, "sim", "experiment", "run", exp_id)
    status = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert status["status"] == "completed"
    assert status["runs"]["passed"] == 1, status
    asked = [r for r in fake.requests if r.model == "gpt-4.1-mini"]
    assert len(asked) == 5  # four refusals, then the answer
    run_id = as_json(server, "sim", "experiment", "runs", exp_id)["items"][0]["id"]
    assert as_json(server, "sim", "run", "get", run_id)["termination_reason"] == "completed"


def test_a_provider_that_never_answers_times_the_run_out(
    server: Server, fake: FakeProvider
) -> None:
    fake.script(Reply.never(), when=model("gpt-4.1-nano"), repeat_last=True)
    exp_id = experiment(server, "silent", "gpt-4.1-nano", timeout=2)
    as_json(server, "sim", "experiment", "run", exp_id)
    status = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert status["status"] == "completed"
    assert status["runs"]["timed_out"] == 1, status
    run_id = as_json(server, "sim", "experiment", "runs", exp_id)["items"][0]["id"]
    run = as_json(server, "sim", "run", "get", run_id)
    assert run["termination_reason"] == "timeout"
    assert "time limit of 2 s" in (run.get("error") or "")


def test_an_agent_without_its_key_is_refused_at_trigger_time(tmp_path: Path) -> None:
    server = Server(tmp_path).start()  # no provider keys in its environment
    try:
        exp_id = experiment(server, "keyless", "gpt-4.1-mini", timeout=60)
        refused = server.tpc("sim", "experiment", "run", exp_id)
        assert refused.returncode == 1
        assert "OPENAI_API_KEY is not set (needed by environment 'keyless')" in refused.stderr
        assert as_json(server, "sim", "experiment", "iterations", exp_id)["items"] == []
    finally:
        server.stop()
