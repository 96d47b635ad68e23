"""LLM-written clusters through the real SDKs against the loopback fake: the model's names,
causes and fixes are kept, its runs still partition the failing runs, and any failure leaves
the rules' clusters standing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.llm.cluster_writer import ANSWER_TOOL, ClusterWriter, configured_model
from infra.llm.providers import ProviderSettings
from infra.llm.retry import RetryPolicy
from tests.fakes.provider import FakeProvider, Reply, forced, serving
from tests.unit.test_written_clusters import DETERMINISTIC, written


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


def writer(fake: FakeProvider, model: str | None = "claude-haiku-4-5") -> ClusterWriter:
    settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
    return ClusterWriter(model, settings, environ=fake.env())


def runs_of(clusters: list[dict[str, Any]]) -> list[str]:
    return sorted(run for c in clusters for run in c["run_ids"])


def test_the_model_writes_the_clusters(fake: FakeProvider) -> None:
    fake.script(
        Reply.tool(ANSWER_TOOL, {"clusters": [written()]}, usage=(3000, 400)),
        when=forced(ANSWER_TOOL),
    )
    result = writer(fake).write_blocking(DETERMINISTIC)
    assert result.written_by == "claude-haiku-4-5" and result.note is None
    assert result.cost > 0
    first = result.clusters[0]
    assert first["category"] == "API key sent in the wrong header"
    assert first["written_by"] == "claude-haiku-4-5"
    assert runs_of(result.clusters) == runs_of(DETERMINISTIC)
    (sent,) = fake.requests
    assert sent.forced_tool == ANSWER_TOOL
    assert "cl_auth" in sent.last_user_text and "401 for run_a1" in sent.last_user_text


def test_a_failing_or_confused_model_leaves_the_rules_clusters(fake: FakeProvider) -> None:
    fake.script(Reply.server_error(), Reply.server_error(), when=forced(ANSWER_TOOL))
    failed = writer(fake).write_blocking(DETERMINISTIC)
    assert failed.clusters == DETERMINISTIC and failed.written_by == "rules"
    assert failed.note is not None and "failed" in failed.note

    fake.reset()
    fake.script(Reply.tool(ANSWER_TOOL, {"clusters": "none"}), when=forced(ANSWER_TOOL))
    confused = writer(fake).write_blocking(DETERMINISTIC)
    assert confused.clusters == DETERMINISTIC
    assert confused.note is not None and "unusable answer" in confused.note


def test_without_a_model_or_with_an_unsupported_one_nothing_is_asked(fake: FakeProvider) -> None:
    assert writer(fake, None).write_blocking(DETERMINISTIC).written_by == "rules"
    unsupported = writer(fake, "llama-3").write_blocking(DETERMINISTIC)
    assert unsupported.note is not None and "unsupported cluster model" in unsupported.note
    assert fake.requests == []
    assert configured_model({"TPC_CLUSTER_MODEL": " gpt-4.1-mini "}) == "gpt-4.1-mini"
    assert configured_model({}) is None
