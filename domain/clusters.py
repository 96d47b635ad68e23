"""Failure clusters (docs/spec.md §7): failing runs grouped into recurring patterns,
deterministically.

1. Every failing run gets a signature (`failure_signature`): its last tool errors as
   fingerprints, HTTP statuses, exception names, hosts, termination reason, fired signals.
2. Naming rules give each signature a category (`category_of`; first match wins).
3. Runs with identical signatures form a group. Groups of one category merge when they
   failed with the same HTTP statuses on the same endpoints, or when their TF-IDF cosine to
   a cluster's centroid reaches `SIMILARITY_THRESHOLD`.
4. Each cluster gets a root-cause area, an explanation and a fix written from its evidence,
   and a few evidence items (run, transcript event, snippet).

A run that resembles nothing stays a cluster of its own: one-offs are never folded into a
family, nor into a catch-all. The same runs, in any order, give the same clusters in the same
order with the same ids. An LLM-written variant (infra) may later rename clusters; it starts
from these.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.clustering.explanations import Area, ClusterFacts, scope_remark, signals_remark
from domain.clustering.normalize import normalize_message
from domain.clustering.rules import RULES, CategoryRule, area_of, category_of, telling_error
from domain.clustering.signatures import (
    FAILING_STATUSES,
    FailingRun,
    Signature,
    ToolError,
    failure_signature,
)
from domain.clustering.similarity import (
    SIMILARITY_THRESHOLD,
    Group,
    informative,
    merge_groups,
    tfidf_vectors,
)
from domain.errors import InvalidInput

__all__ = [
    "FAILING_STATUSES",
    "MAX_EVIDENCE",
    "MAX_SNIPPET",
    "RULES",
    "SIMILARITY_THRESHOLD",
    "Cluster",
    "Evidence",
    "FailingRun",
    "Signature",
    "ToolError",
    "category_of",
    "cluster_failures",
    "failure_signature",
    "normalize_message",
    "suggestions",
]

# Evidence items per cluster: enough to show its variants, few enough to read.
MAX_EVIDENCE = 5
MAX_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a cluster's failure shows: a run, a transcript event (None: no transcript), text."""

    run_id: str
    event: int | None
    snippet: str

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "event": self.event, "snippet": self.snippet}


@dataclass(frozen=True, slots=True)
class Cluster:
    """A recurring failure: its name, root cause, fix, runs and evidence (docs/spec.md §7).

    `signature` is the cluster's most common signature, kept for whoever renames it."""

    id: str
    category: str
    area: Area
    explanation: str
    recommended_fix: str
    run_ids: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    signature: Signature

    @property
    def size(self) -> int:
        return len(self.run_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "root_cause": {"area": self.area, "explanation": self.explanation},
            "recommended_fix": self.recommended_fix,
            "run_ids": list(self.run_ids),
            "size": self.size,
            "evidence": [item.to_json() for item in self.evidence],
        }


def cluster_failures(
    runs: Sequence[FailingRun], threshold: float = SIMILARITY_THRESHOLD
) -> list[Cluster]:
    """Group the failing runs (other statuses are left out) into clusters, largest first
    (then by id). Every failing run is in exactly one cluster. Raises `InvalidInput` when two
    runs share an id."""
    failing = sorted((r for r in runs if r.status in FAILING_STATUSES), key=lambda r: r.run_id)
    duplicates = sorted(run_id for run_id, n in Counter(r.run_id for r in failing).items() if n > 1)
    if duplicates:
        raise InvalidInput(f"failing runs must have distinct ids; repeated: {duplicates[:5]}")

    signatures = {run.run_id: failure_signature(run) for run in failing}
    by_key: dict[str, list[FailingRun]] = defaultdict(list)
    for run in failing:
        by_key[signatures[run.run_id].key()].append(run)
    categories = {
        key: category_of(signatures[members[0].run_id]) for key, members in by_key.items()
    }
    rule_rank = {rule.category: rank for rank, rule in enumerate(RULES)}
    # Largest groups first, so that a cluster's centroid starts at its commonest form.
    keys = sorted(by_key, key=lambda k: (rule_rank[categories[k].category], -len(by_key[k]), k))
    leaders = [signatures[by_key[k][0].run_id] for k in keys]
    vectors = tfidf_vectors([informative(signature.tokens()) for signature in leaders])
    groups = [
        Group(categories[k].category, _anchor(signature), len(by_key[k]), vector)
        for k, signature, vector in zip(keys, leaders, vectors, strict=True)
    ]
    clusters = []
    for members in merge_groups(groups, threshold):
        member_keys = [keys[i] for i in members]
        cluster_runs = sorted((r for k in member_keys for r in by_key[k]), key=lambda r: r.run_id)
        leader = member_keys[0]  # the largest group: the cluster's commonest signature
        clusters.append(_describe(categories[leader], leader, cluster_runs, signatures))
    return sorted(clusters, key=lambda c: (-c.size, c.id))


def suggestions(clusters: Sequence[Cluster | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fixes ranked by how many runs they would address: clusters with the same fix and area
    count together. Ties: the fix whose first cluster comes first, then the fix's text.
    Takes clusters or their recorded JSON (as an LLM may have rewritten them)."""
    runs: dict[tuple[str, str], int] = defaultdict(int)
    cluster_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cluster in clusters:
        recorded = cluster.to_json() if isinstance(cluster, Cluster) else cluster
        fix = (recorded["recommended_fix"], recorded["root_cause"]["area"])
        runs[fix] += recorded["size"]
        cluster_ids[fix].append(recorded["id"])
    ranked = sorted(runs, key=lambda fix: (-runs[fix], min(cluster_ids[fix]), fix))
    return [
        {
            "fix": fix,
            "runs": runs[(fix, area)],
            "cluster_ids": sorted(cluster_ids[(fix, area)]),
            "area": area,
        }
        for fix, area in ranked
    ]


def _anchor(signature: Signature) -> str | None:
    """Where a failure happened, when it names a place: its HTTP statuses and endpoints.
    The same failure at the same endpoint is one failure, however it was worded."""
    if not signature.routes:
        return None
    return " ".join([*map(str, signature.http_statuses), *signature.routes])


def _describe(
    rule: CategoryRule, leader_key: str, runs: list[FailingRun], signatures: dict[str, Signature]
) -> Cluster:
    members = [(run, signatures[run.run_id]) for run in runs]
    facts = _facts(rule, members)
    area = area_of(rule, facts)
    return Cluster(
        id="cl_" + hashlib.sha256(leader_key.encode()).hexdigest()[:10],
        category=rule.category,
        area=area,
        explanation=rule.explain(facts) + scope_remark(facts) + signals_remark(facts),
        recommended_fix=rule.fix(facts, area),
        run_ids=tuple(run.run_id for run in runs),
        evidence=_evidence(rule, members),
        signature=next(sig for _, sig in members if sig.key() == leader_key),
    )


def _facts(rule: CategoryRule, members: list[tuple[FailingRun, Signature]]) -> ClusterFacts:
    statuses: Counter[int] = Counter()
    hosts: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    tools: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    final_answers: Counter[str] = Counter()
    examples: dict[str, str] = {}
    final_examples: dict[str, str] = {}
    signals: Counter[str] = Counter()
    for _, signature in members:
        statuses.update(signature.http_statuses)
        hosts.update(signature.hosts)
        routes.update(signature.routes)
        tools.update({e.tool for e in signature.errors if e.tool})
        kinds.update(k for k in signature.error_kinds if k != "Timeout")
        signals.update(signature.fired_signals)
        telling = telling_error(signature, rule)
        if telling is not None:
            messages[telling[2]] += 1
            examples.setdefault(telling[2], telling[1])
        if signature.final_answer:
            final_answers[signature.final_answer] += 1
            final_examples.setdefault(signature.final_answer, signature.final_text)
    return ClusterFacts(
        runs=len(members),
        tasks=tuple(sorted({run.task_name or run.task_id for run, _ in members})),
        environments=tuple(
            sorted({run.environment_name or run.environment_id for run, _ in members})
        ),
        statuses=statuses,
        hosts=hosts,
        routes=routes,
        tools=tools,
        kinds=kinds,
        messages=messages,
        final_answers=final_answers,
        final_examples=final_examples,
        examples=examples,
        docs_gap=sum(s.docs_gap for _, s in members),
        read_docs=sum(s.read_docs for _, s in members),
        ended_by_time_limit=sum(
            run.status == "timed_out" or run.termination_reason == "timeout" for run, _ in members
        ),
        signals=signals,
    )


def _evidence(
    rule: CategoryRule, members: list[tuple[FailingRun, Signature]]
) -> tuple[Evidence, ...]:
    """A few items, one per run, variants first: the first run of each distinct fingerprint,
    then of each distinct snippet, then the other runs, each tier in run-id order."""
    items: list[tuple[str, Evidence]] = []
    for run, signature in members:
        telling = telling_error(signature, rule)
        if telling is not None:
            event, text, fingerprint = telling
        elif signature.final_text:
            event, text = signature.final_event, signature.final_text
            fingerprint = signature.final_answer
        else:
            text = (
                run.error or f"{run.status}, {run.termination_reason or 'no reason'}: no transcript"
            )
            event, fingerprint = None, normalize_message(text)
        items.append((fingerprint, Evidence(run.run_id, event, _snippet(text))))
    picked: list[Evidence] = []
    tiers: tuple[Callable[[str, Evidence], str], ...] = (
        lambda fingerprint, item: fingerprint,
        lambda fingerprint, item: item.snippet,
        lambda fingerprint, item: item.run_id,
    )
    for tier in tiers:
        seen = {tier(fp, item) for fp, item in items if item in picked}
        for fp, item in items:
            if len(picked) < MAX_EVIDENCE and item not in picked and tier(fp, item) not in seen:
                seen.add(tier(fp, item))
                picked.append(item)
    return tuple(picked)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SNIPPET else text[: MAX_SNIPPET - 1] + "…"
