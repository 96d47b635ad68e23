"""LLM-written clusters: whatever the model answers, the failing runs stay partitioned."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.clustering.written import apply_written_clusters, cluster_question
from domain.errors import InvalidInput


def cluster(cid: str, runs: list[str], category: str = "Auth failures") -> dict[str, Any]:
    return {
        "id": cid,
        "category": category,
        "root_cause": {"area": "docs", "explanation": "rules' explanation"},
        "recommended_fix": "rules' fix",
        "run_ids": runs,
        "size": len(runs),
        "evidence": [{"run_id": r, "event": 3, "snippet": f"401 for {r}"} for r in runs[:2]],
    }


AUTH = cluster("cl_auth", ["run_a1", "run_a2", "run_a3"])
AUTH2 = cluster("cl_auth2", ["run_b1"], "Auth failures")
DOCS = cluster("cl_docs", ["run_d1", "run_d2"], "Missing docs pages")
DETERMINISTIC = [AUTH, DOCS, AUTH2]


def written(**fields: Any) -> dict[str, Any]:
    return {
        "category": "API key sent in the wrong header",
        "area": "docs",
        "explanation": "The quickstart shows `X-Api-Key`; the API wants a bearer token.",
        "recommended_fix": "Show the Authorization: Bearer header in the quickstart.",
        "from_clusters": ["cl_auth", "cl_auth2"],
        **fields,
    }


def runs_of(clusters: list[dict[str, Any]]) -> list[str]:
    return sorted(run for c in clusters for run in c["run_ids"])


ALL_RUNS = runs_of(DETERMINISTIC)


def test_a_model_can_merge_clusters_and_rename_them() -> None:
    result = apply_written_clusters(
        DETERMINISTIC,
        {
            "clusters": [
                written(evidence=[{"run_id": "run_b1", "event": 5, "snippet": "X-Api-Key"}])
            ]
        },
    )
    merged, docs = result
    assert merged["category"] == "API key sent in the wrong header"
    assert merged["root_cause"]["area"] == "docs"
    assert merged["run_ids"] == ["run_a1", "run_a2", "run_a3", "run_b1"]
    assert merged["evidence"] == [{"run_id": "run_b1", "event": 5, "snippet": "X-Api-Key"}]
    assert merged["written_by"] == "model"
    # The model said nothing about the docs cluster: it stays as the rules wrote it.
    assert docs == DOCS
    assert runs_of(result) == ALL_RUNS


def test_a_model_can_split_a_cluster() -> None:
    result = apply_written_clusters(
        DETERMINISTIC,
        {
            "clusters": [
                written(from_clusters=["cl_auth"], run_ids=["run_a1"], category="Expired keys"),
                written(from_clusters=["cl_auth"], category="Wrong header"),
            ]
        },
    )
    categories = {c["category"]: c["run_ids"] for c in result}
    assert categories["Expired keys"] == ["run_a1"]
    assert categories["Wrong header"] == ["run_a2", "run_a3"]
    assert runs_of(result) == ALL_RUNS


def test_invented_runs_and_clusters_and_citations_are_ignored() -> None:
    result = apply_written_clusters(
        DETERMINISTIC,
        {
            "clusters": [
                written(
                    from_clusters=["cl_docs", "cl_made_up"],
                    run_ids=["run_d1", "run_zz"],
                    evidence=[{"run_id": "run_zz", "event": 1, "snippet": "invented"}],
                )
            ]
        },
    )
    taken = next(c for c in result if c.get("written_by"))
    assert taken["run_ids"] == ["run_d1"]
    # The citation pointed outside the cluster: the rules' evidence for its runs stands in.
    assert taken["evidence"] == [{"run_id": "run_d1", "event": 3, "snippet": "401 for run_d1"}]
    rest = next(c for c in result if "run_d2" in c["run_ids"])
    assert rest["size"] == 1 and rest["id"] != "cl_docs"
    assert runs_of(result) == ALL_RUNS


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("just text", "no list of clusters"),
        ({"clusters": [written(area="marketing")]}, r"clusters\[0\].area: must be one of"),
        ({"clusters": [written(category=" ")]}, r"clusters\[0\].category"),
        ({"clusters": [written(from_clusters="cl_auth")]}, r"clusters\[0\].from_clusters"),
        ({"clusters": [written(from_clusters=["cl_nothing"])]}, "cover none"),
    ],
)
def test_unusable_answers_are_rejected_with_a_reason(answer: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        apply_written_clusters(DETERMINISTIC, answer)


def test_the_question_shows_every_cluster_with_its_evidence() -> None:
    question = cluster_question(DETERMINISTIC)
    for c in DETERMINISTIC:
        assert c["id"] in question
    assert "401 for run_a1" in question


CLUSTER_IDS = ["cl_auth", "cl_docs", "cl_auth2", "cl_unknown"]


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "from_clusters": st.lists(st.sampled_from(CLUSTER_IDS), max_size=3),
                "run_ids": st.none() | st.lists(st.sampled_from([*ALL_RUNS, "run_x"])),
            }
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_answer_keeps_every_failing_run_in_exactly_one_cluster(
    items: list[dict[str, Any]],
) -> None:
    answer = {"clusters": [written(**item) for item in items]}
    try:
        result = apply_written_clusters(DETERMINISTIC, answer)
    except InvalidInput:
        return  # unusable: the caller keeps the deterministic clusters
    assert runs_of(result) == ALL_RUNS
    assert len({c["id"] for c in result}) == len(result)
    assert [c["size"] for c in result] == sorted((c["size"] for c in result), reverse=True)


def test_suggestions_rank_written_clusters_like_the_rules_ones() -> None:
    from domain.clusters import RecordedCluster, suggestions

    result = apply_written_clusters(DETERMINISTIC, {"clusters": [written()]})
    ranked = suggestions([RecordedCluster.from_json(cluster) for cluster in result])
    assert ranked[0].fix == "Show the Authorization: Bearer header in the quickstart."
    assert ranked[0].runs == 4 and ranked[0].area == "docs"
    assert sum(item.runs for item in ranked) == len(ALL_RUNS)
