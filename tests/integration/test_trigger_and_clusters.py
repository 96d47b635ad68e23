"""Trigger-time key checks (a missing provider key is one clear error, not a page of errored
runs) and LLM-written clusters recorded with the iteration, on a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.errors import InvalidInput
from infra.llm.cluster_writer import ANSWER_TOOL, ClusterWriter
from infra.llm.providers import ProviderSettings
from infra.llm.retry import RetryPolicy
from infra.runners.registry import build_runners
from infra.settings import Settings
from tests.conftest import ROOT
from tests.fakes.provider import FakeProvider, Recorded, Reply, forced, serving

SEED_CONFIG = (ROOT / "examples" / "seed-signals.yaml").read_text()  # has an llm signal
LLM_AGENT = {"kind": "llm", "provider": "anthropic", "model": "claude-haiku-4-5"}
SCRIPTED = {"kind": "scripted", "skill": 0.2}


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


def open_service(tmp_path: Path, **kwargs: Any) -> Service:
    return Service(Settings(database_url=f"sqlite:///{tmp_path / 'tpc.db'}"), **kwargs)


def experiment(
    service: Service, agent: dict[str, Any], config: str | None, repeats: int = 1
) -> tuple[str, str]:
    created = service.catalog.bootstrap("token")
    assert created is not None
    product = created.product_id
    task = service.catalog.create_task(product, {"name": "install", "prompt": "Install the SDK."})
    env = service.catalog.create_environment(product, {"name": "agent", "agent": agent})
    exp = service.experiments.create_experiment(
        product, "checks", [task.id], [env.id], repeats, config
    )
    return product, exp.id


def test_an_agent_without_its_key_cannot_be_triggered(tmp_path: Path) -> None:
    service = open_service(tmp_path, environ={})
    try:
        product, exp_id = experiment(service, LLM_AGENT, None)
        with pytest.raises(InvalidInput, match=r"ANTHROPIC_API_KEY is not set \(needed by "):
            service.experiments.trigger(product, exp_id)
        assert service.views.experiment(product, exp_id).iterations == 0  # nothing saved
    finally:
        service.close()


def test_llm_signals_without_their_key_only_warn(tmp_path: Path) -> None:
    service = open_service(tmp_path, environ={})
    try:
        product, exp_id = experiment(service, SCRIPTED, SEED_CONFIG)
        started = service.experiments.trigger(product, exp_id)
        assert started.iteration == 1
        assert started.warnings is not None
        (warning,) = started.warnings
        assert warning.startswith("ANTHROPIC_API_KEY is not set (needed by signal ")
    finally:
        service.close()
    with_key = open_service(tmp_path, environ={"ANTHROPIC_API_KEY": "k"})
    try:
        product = with_key.catalog.product_for_token("token")
        assert product is not None
        assert with_key.experiments.trigger(product, exp_id).warnings is None
    finally:
        with_key.close()


def test_a_cluster_model_writes_the_recorded_clusters(tmp_path: Path, fake: FakeProvider) -> None:
    def answer(request: Recorded) -> Reply:
        # Merge every deterministic cluster the question shows into one, named by the model.
        ids = [
            line.split('"')[3] for line in request.last_user_text.splitlines() if '"id":' in line
        ]
        cluster = {
            "category": "Agents stumble on the quickstart",
            "area": "docs",
            "explanation": "Every failure starts on the quickstart page.",
            "recommended_fix": "Rewrite the quickstart's first step.",
            "from_clusters": ids,
        }
        return Reply.tool(ANSWER_TOOL, {"clusters": [cluster]})

    fake.respond(answer, when=forced(ANSWER_TOOL))
    settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
    writer = ClusterWriter("claude-haiku-4-5", settings, fake.env())
    service = open_service(tmp_path, cluster_writer=writer)
    try:
        product, exp_id = experiment(service, SCRIPTED, None, repeats=12)
        service.experiments.trigger(product, exp_id)

        async def run_all() -> None:
            executor = Executor(service.runs, build_runners(service.blobs.get), concurrency=4)
            await executor.submit(exp_id, 1)
            await executor.drain()

        asyncio.run(run_all())
        results = service.views.results(product, exp_id, 1)
    finally:
        service.close()
    failing = results.summary["runs"]
    failed = sum(failing.get(s, 0) for s in ("failed", "errored", "timed_out"))
    assert failed > 0
    (cluster,) = results.failure_clusters
    assert cluster["category"] == "Agents stumble on the quickstart"
    assert cluster["written_by"] == "claude-haiku-4-5"
    assert cluster["size"] == failed
    assert results.suggestions[0]["fix"] == "Rewrite the quickstart's first step."
    assert len(fake.requests) == 1
