"""LLM-written clusters through the real SDKs against the loopback fake: the model's names,
causes and fixes are kept, its runs still partition the failing runs, and any failure leaves
the rules' clusters standing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.clusters import RecordedCluster, cluster_failures
from infra.llm.cluster_writer import ANSWER_TOOL, ClusterWriter, WrittenClusters, configured_model
from infra.llm.providers import ProviderSettings
from infra.llm.retry import RetryPolicy
from tests.failure_corpus import corpus, purity_and_completeness
from tests.fakes.provider import FakeProvider, Reply, forced, serving
from tests.unit.test_written_clusters import DETERMINISTIC, written


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


def writer(fake: FakeProvider, model: str | None = "claude-haiku-4-5") -> ClusterWriter:
    settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
    return ClusterWriter(model, settings, environ=fake.env())


def write(writer: ClusterWriter, clusters: list[dict[str, Any]]) -> WrittenClusters:
    """The writer given recorded clusters (their JSON, as the tests write them)."""
    return writer.write_blocking([RecordedCluster.from_json(c) for c in clusters])


def as_json(result: WrittenClusters) -> list[dict[str, Any]]:
    return [cluster.to_json() for cluster in result.clusters]


def runs_of(clusters: list[dict[str, Any]]) -> list[str]:
    return sorted(run for c in clusters for run in c["run_ids"])


def test_the_model_writes_the_clusters(fake: FakeProvider) -> None:
    docs = written(category="Docs pages that moved", from_clusters=["cl_docs"])
    fake.script(
        Reply.tool(ANSWER_TOOL, {"clusters": [written(), docs]}, usage=(3000, 400)),
        when=forced(ANSWER_TOOL),
    )
    result = write(writer(fake), DETERMINISTIC)
    assert result.written_by == "claude-haiku-4-5" and result.note is None
    assert result.cost > 0
    first = result.clusters[0]
    assert first.category == "API key sent in the wrong header"
    assert first.written_by == "claude-haiku-4-5"
    assert runs_of(as_json(result)) == runs_of(DETERMINISTIC)
    (sent,) = fake.requests
    assert sent.forced_tool == ANSWER_TOOL
    assert "cl_auth" in sent.last_user_text and "401 for run_a1" in sent.last_user_text


def test_a_failing_or_confused_model_leaves_the_rules_clusters(fake: FakeProvider) -> None:
    fake.script(Reply.server_error(), Reply.server_error(), when=forced(ANSWER_TOOL))
    failed = write(writer(fake), DETERMINISTIC)
    assert as_json(failed) == DETERMINISTIC and failed.written_by == "rules"
    assert failed.note is not None and "failed" in failed.note

    fake.reset()
    fake.script(Reply.tool(ANSWER_TOOL, {"clusters": "none"}), when=forced(ANSWER_TOOL))
    confused = write(writer(fake), DETERMINISTIC)
    assert as_json(confused) == DETERMINISTIC
    assert confused.note is not None and "unusable answer" in confused.note


def test_without_a_model_or_with_an_unsupported_one_nothing_is_asked(fake: FakeProvider) -> None:
    assert write(writer(fake, None), DETERMINISTIC).written_by == "rules"
    unsupported = write(writer(fake, "llama-3"), DETERMINISTIC)
    assert unsupported.note is not None and "unsupported cluster model" in unsupported.note
    assert fake.requests == []
    assert configured_model({"TPC_CLUSTER_MODEL": " gpt-4.1-mini "}) == "gpt-4.1-mini"
    assert configured_model({}) is None


# --- the labelled corpus through the model path ------------------------------------------------


def corpus_clusters() -> tuple[list[dict[str, Any]], dict[str, str]]:
    labelled = corpus()
    labels = {item.run.run_id: item.cause for item in labelled}
    return [c.to_json() for c in cluster_failures([item.run for item in labelled])], labels


def figures(clusters: list[dict[str, Any]], labels: dict[str, str]) -> tuple[float, float]:
    return purity_and_completeness([c["run_ids"] for c in clusters], labels)


def renamed(cluster: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "category": f"{cluster['category']}, as the model names it",
        "area": cluster["root_cause"]["area"],
        "explanation": "The model's reading of " + cluster["root_cause"]["explanation"],
        "recommended_fix": cluster["recommended_fix"],
        "from_clusters": [cluster["id"]],
        **fields,
    }


def test_on_the_labelled_corpus_the_model_path_keeps_the_figures(fake: FakeProvider) -> None:
    rules, labels = corpus_clusters()
    fake.script(
        Reply.tool(ANSWER_TOOL, {"clusters": [renamed(c) for c in rules]}),
        when=forced(ANSWER_TOOL),
    )
    result = write(writer(fake), rules)
    assert result.written_by == "claude-haiku-4-5"
    purity, completeness = figures(as_json(result), labels)
    print(f"\nmodel path on the corpus: purity {purity:.3f}, completeness {completeness:.3f}")
    assert purity >= 0.9 and completeness >= 0.85
    # the causes' keys and places survive the rename: iterations still compare by cause
    assert sorted(c.key or "" for c in result.clusters) == sorted(c["key"] for c in rules)
    assert all(c.places for c in result.clusters)
    (sent,) = fake.requests
    assert '"key": "doc_loop"' in sent.last_user_text and '"places"' in sent.last_user_text


def test_a_model_that_loses_runs_is_worse_on_coverage_and_the_rules_stand(
    fake: FakeProvider,
) -> None:
    rules, labels = corpus_clusters()
    # Forgets two causes, and claims one cluster's runs twice.
    answer = [renamed(c) for c in rules[2:]] + [renamed(rules[2], category="Twice")]
    fake.script(Reply.tool(ANSWER_TOOL, {"clusters": answer}), when=forced(ANSWER_TOOL))
    result = write(writer(fake), rules)
    assert result.written_by == "rules" and as_json(result) == rules
    assert result.note is not None and "worse than the rules'" in result.note
    lost = rules[0]["size"] + rules[1]["size"] + rules[2]["size"]
    assert f"put {len(labels) - lost} of the {len(labels)} failing runs" in result.note
    assert figures(as_json(result), labels) == figures(rules, labels)


def test_a_model_that_names_two_clusters_alike_is_worse_and_the_rules_stand(
    fake: FakeProvider,
) -> None:
    rules, _ = corpus_clusters()
    answer = [renamed(c, category="Tool errors") for c in rules]
    fake.script(Reply.tool(ANSWER_TOOL, {"clusters": answer}), when=forced(ANSWER_TOOL))
    result = write(writer(fake), rules)
    assert result.written_by == "rules"
    assert result.note is not None and "one name to several clusters: tool errors" in result.note


def test_a_model_that_merges_causes_keeps_coverage_and_its_figures_show_it(
    fake: FakeProvider,
) -> None:
    rules, labels = corpus_clusters()
    merged = renamed(rules[0], category="Everything", from_clusters=[c["id"] for c in rules])
    fake.script(Reply.tool(ANSWER_TOOL, {"clusters": [merged]}), when=forced(ANSWER_TOOL))
    result = write(writer(fake), rules)
    # Coverage is whole, so the model's clusters are recorded; the figures say what was lost.
    assert result.written_by == "claude-haiku-4-5"
    (cluster,) = result.clusters
    assert cluster.key == "+".join(sorted(c["key"] for c in rules))
    purity, completeness = figures(as_json(result), labels)
    assert completeness == 1.0 and purity < 0.1
