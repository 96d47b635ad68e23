"""Failure clusters by root cause: measured on a labelled corpus, the cases that fooled earlier
rules one by one, and how clusters compare across iterations."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from domain.clusters import FailingRun, cause_of, cluster_changes, cluster_failures
from domain.transcripts import transcript_from_object
from tests.failure_corpus import GENERATORS, corpus, purity_and_completeness

PURITY = 0.9
COMPLETENESS = 0.85


def measured(seed: int) -> tuple[float, float, list[Any]]:
    labelled = corpus(seed)
    labels = {item.run.run_id: item.cause for item in labelled}
    clusters = cluster_failures([item.run for item in labelled])
    purity, completeness = purity_and_completeness([c.run_ids for c in clusters], labels)
    return purity, completeness, clusters


def test_the_corpus_covers_many_causes_places_and_adversarial_cases() -> None:
    labelled = corpus()
    causes = Counter(item.cause for item in labelled)
    assert len(causes) >= 8 and min(causes.values()) >= 10
    tricks = Counter(item.adversarial for item in labelled if item.adversarial)
    for trick in (
        "misleading words in the URL",
        "FileNotFoundError from read_doc",
        "errors quoted in the docs text",
        "several causes: 401 then 404s",
        "several causes: an error, then the step limit",
        "several causes: an earlier TypeError, then a pending call",
    ):
        assert tricks[trick] >= 2, trick
    assert corpus() == corpus()  # seeded: the same corpus every time


def test_clusters_follow_root_causes_on_the_labelled_corpus() -> None:
    purity, completeness, clusters = measured(seed=12)
    print(f"\nlabelled corpus: purity {purity:.3f}, completeness {completeness:.3f}")
    assert purity >= PURITY and completeness >= COMPLETENESS
    names = [c.category for c in clusters]
    assert len(names) == len(set(names))
    # every cause happened at several places, and its one cluster lists them with counts
    for cluster in clusters:
        assert sum(p.runs for p in cluster.places) == cluster.size
    assert len(clusters) <= len(GENERATORS) + 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_draws_of_the_corpus_hold_the_figures(seed: int) -> None:
    purity, completeness, _ = measured(seed)
    assert purity >= PURITY and completeness >= COMPLETENESS, (seed, purity, completeness)


# --- single runs: the cases that fooled earlier rules ----------------------------------------


def failing(
    steps: list[tuple[str, dict[str, Any], str, bool]],
    status: str = "failed",
    reason: str | None = "completed",
    final: str | None = "It failed.",
    pending: tuple[str, dict[str, Any]] | None = None,
    run_id: str = "r1",
) -> FailingRun:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Do it."}]
    for index, (tool, args, result, error) in enumerate(steps):
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_call", "id": f"c{index}", "name": tool, "input": args}],
            }
        )
        messages.append(
            {
                "role": "tool",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_call_id": f"c{index}",
                        "content": result,
                        "is_error": error,
                    }
                ],
            }
        )
    if pending:
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_call", "id": "p", "name": pending[0], "input": pending[1]}
                ],
            }
        )
    if final:
        messages.append({"role": "assistant", "content": final})
    data = transcript_from_object({"version": 1, "messages": messages})
    return FailingRun(run_id, "t", "e", status, reason, None, data, task_name="refund")


def test_a_404_on_a_url_that_says_rate_limits_is_a_missing_page_not_rate_limiting() -> None:
    docs = failing(
        [
            (
                "fetch_url",
                {"url": "https://docs.acme.test/guides/rate-limits"},
                "404 Not Found: https://docs.acme.test/guides/rate-limits",
                True,
            )
        ]
    )
    finding = cause_of(docs)
    assert finding.key == "docs_page_missing"
    assert finding.place == ("page", "docs.acme.test/guides/rate-limits")
    api = failing(
        [
            (
                "shell",
                {"command": "curl https://api.acme.com/v1/rate-limits"},
                "HTTP/1.1 404 Not Found",
                True,
            )
        ]
    )
    assert cause_of(api).key == "endpoint_missing"
    assert cause_of(api).place == ("endpoint", "api.acme.com/v1/rate-limits")


def test_file_not_found_from_read_doc_is_a_missing_doc() -> None:
    run = failing(
        [
            (
                "read_doc",
                {"path": "guides/refunds.md"},
                "FileNotFoundError: [Errno 2] No such file or directory: 'docs/guides/refunds.md'",
                True,
            )
        ]
    )
    finding = cause_of(run)
    assert (finding.key, finding.place) == ("docs_page_missing", ("page", "guides/refunds.md"))
    (cluster,) = cluster_failures([run])
    assert cluster.area == "docs" and "guides/refunds.md" in cluster.recommended_fix


def test_errors_quoted_in_a_docs_page_are_content_not_failures() -> None:
    run = failing(
        [
            (
                "read_doc",
                {"path": "reference/errors.md"},
                "# Errors\nHTTP/1.1 401 Unauthorized means a bad key. Traceback (most recent "
                "call last): TimeoutError: timed out",
                False,
            )
        ],
        final="Done: refunded 5 EUR.",
    )
    assert cause_of(run).key == "wrong_answer"


def test_re_reading_one_doc_to_the_step_limit_is_a_loop_with_honest_evidence() -> None:
    reads = [("read_doc", {"path": "guides/refunds.md"}, "# Refunds\nUse the API.", False)] * 5
    run = failing(reads, reason="max_steps", final=None)
    (cluster,) = cluster_failures([run])
    assert cluster.key == "doc_loop" and cluster.area == "docs"
    assert cluster.places[0].name == "guides/refunds.md"
    assert "guides/refunds.md" in cluster.recommended_fix
    assert "error message" not in cluster.recommended_fix
    assert (
        "5 times" in cluster.evidence[0].snippet and "no tool error" in cluster.evidence[0].snippet
    )
    # without the repeats, the step limit is the cause
    (other,) = cluster_failures(
        [failing([*reads[:1], ("shell", {"command": "ls"}, "a b", False)], reason="max_steps")]
    )
    assert other.key == "step_limit"


def test_a_hung_shell_command_is_not_described_as_waiting_on_a_service() -> None:
    run = failing(
        [],
        status="timed_out",
        reason="timeout",
        final=None,
        pending=("shell", {"command": "npm init"}),
    )
    (cluster,) = cluster_failures([run])
    assert cluster.key == "hung_command"
    assert cluster.places[0].name == "npm init"
    assert "No service was called" in cluster.explanation
    assert "npm init" in cluster.recommended_fix
    curl = failing(
        [],
        status="timed_out",
        reason="timeout",
        final=None,
        pending=("shell", {"command": "curl https://api.acme.com/v2/jobs"}),
    )
    assert cause_of(curl).key == "service_timeout"


def test_a_run_with_several_causes_goes_to_its_decisive_one() -> None:
    run = failing(
        [
            ("read_doc", {"path": "guides/x.md"}, "404 page not found", True),
            (
                "shell",
                {"command": "curl https://api.acme.com/v1/a"},
                "HTTP/1.1 401 Unauthorized",
                True,
            ),
            (
                "shell",
                {"command": "curl https://api.acme.com/v1/b"},
                "HTTP/1.1 404 Not Found",
                True,
            ),
        ],
        reason="max_steps",
    )
    assert cause_of(run).key == "auth"


def test_status_codes_decide_over_words() -> None:
    run = failing(
        [
            (
                "shell",
                {"command": "python main.py"},
                "HTTP 404: no route; see the authentication and rate limit guides",
                True,
            )
        ]
    )
    assert cause_of(run).key == "endpoint_missing"


# --- comparing iterations ----------------------------------------------------------------


def recorded(key: str, size: int, category: str | None = None) -> dict[str, Any]:
    return {"id": f"cl_{key}", "key": key, "category": category or key.title(), "size": size}


def test_clusters_compare_across_iterations_by_their_stable_keys() -> None:
    now = [
        recorded("auth", 5),
        recorded("doc_loop", 3),
        recorded("gave_up", 2),
        recorded("budget", 1),
    ]
    then = [
        recorded("auth", 2),
        recorded("doc_loop", 4),
        recorded("gave_up", 2),
        recorded("rate_limit", 6),
    ]
    rows = {r["key"]: r for r in cluster_changes(now, then)}
    assert rows["auth"] == {
        "key": "auth",
        "category": "Auth",
        "change": "grown",
        "runs": 5,
        "previous_runs": 2,
        "delta": 3,
    }
    assert rows["doc_loop"]["change"] == "shrunk" and rows["doc_loop"]["delta"] == -1
    assert rows["gave_up"]["change"] == "unchanged"
    assert rows["budget"]["change"] == "new" and rows["budget"]["previous_runs"] == 0
    assert rows["rate_limit"]["change"] == "resolved" and rows["rate_limit"]["runs"] == 0
    assert [r["change"] for r in cluster_changes(now, then)] == [
        "new",
        "grown",
        "shrunk",
        "unchanged",
        "resolved",
    ]


def test_clusters_recorded_before_keys_compare_by_name() -> None:
    old = [{"id": "cl_1", "category": "Auth failures", "size": 2, "run_ids": ["a", "b"]}]
    new = [{"id": "cl_2", "category": "auth failures", "size": 1}]
    (row,) = cluster_changes(new, old)
    assert row["change"] == "shrunk"


def test_real_clusters_of_two_iterations_compare() -> None:
    first = corpus(seed=1, per_cause=3)
    second = [item for item in corpus(seed=2, per_cause=4) if item.cause != "auth"]
    before = [c.to_json() for c in cluster_failures([i.run for i in first])]
    after = [c.to_json() for c in cluster_failures([i.run for i in second])]
    rows = {r["key"]: r for r in cluster_changes(after, before)}
    assert rows["auth"]["change"] == "resolved"
    assert rows["doc_loop"] == {
        "key": "doc_loop",
        "category": "Agents re-reading the same docs page to the step limit",
        "change": "grown",
        "runs": 4,
        "previous_runs": 3,
        "delta": 1,
    }
