"""Failure clusters (docs/spec.md §7): one cluster per root cause, and inside it where it happened.

1. Every failing run gets a signature (`failure_signature`): its last tool errors as
   fingerprints, HTTP statuses, exception names, hosts, termination reason, the call it was
   waiting on, the docs call it repeated, how it ended.
2. The cause rules (`domain.clustering.rules.decide`) give each run its decisive root cause,
   read from status codes first, then exception types, then words (never words in URLs or
   ids), and the place it happened: a host, docs page, endpoint, package, command, tool or task.
3. Runs with the same cause key form one cluster, whatever their places and wording; the
   cluster counts its places, and its explanation and fix name them.

A cause's key is stable (`auth`, `docs_page_missing`, `tool_error:TypeError`), and so are its
cluster's name and id: iteration N's clusters compare with N-1's by key. The same runs, in any
order, give the same clusters in the same order. An LLM-written variant (infra) may later
rename clusters; it starts from these.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.clustering.changes import cluster_changes, cluster_key
from domain.clustering.explanations import Area, ClusterFacts, scope_remark, signals_remark
from domain.clustering.normalize import http_statuses_in, normalize_message
from domain.clustering.rules import RULES, Finding, area_of, decide, exception_names
from domain.clustering.signatures import (
    FAILING_STATUSES,
    FailingRun,
    Signature,
    ToolError,
    failure_signature,
)
from domain.errors import InvalidInput
from domain.event_payloads import PayloadField, modelled

__all__ = [
    "FAILING_STATUSES",
    "MAX_EVIDENCE",
    "MAX_SNIPPET",
    "RECORDED_CLUSTERS",
    "RULES",
    "SUGGESTIONS",
    "Cluster",
    "Evidence",
    "FailingRun",
    "Place",
    "RecordedCluster",
    "RootCause",
    "Signature",
    "Suggestion",
    "ToolError",
    "cause_of",
    "cluster_changes",
    "cluster_failures",
    "cluster_key",
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
class Place:
    """Where a cause happened, and in how many of the cluster's runs."""

    kind: str  # host | page | endpoint | package | command | tool | task | environment
    name: str
    runs: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "runs": self.runs}


@dataclass(frozen=True, slots=True)
class Cluster:
    """A root cause: its stable key, name, area, fix, runs, places and evidence (docs/spec.md §7).

    `signature` is the signature of the cluster's first run, kept for whoever renames it."""

    id: str
    key: str
    category: str
    area: Area
    explanation: str
    recommended_fix: str
    run_ids: tuple[str, ...]
    places: tuple[Place, ...]
    evidence: tuple[Evidence, ...]
    signature: Signature

    @property
    def size(self) -> int:
        return len(self.run_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "category": self.category,
            "root_cause": {"area": self.area, "explanation": self.explanation},
            "recommended_fix": self.recommended_fix,
            "run_ids": list(self.run_ids),
            "size": self.size,
            "places": [place.to_json() for place in self.places],
            "evidence": [item.to_json() for item in self.evidence],
        }

    def recorded(self) -> RecordedCluster:
        """The cluster as its iteration records it."""
        return RecordedCluster(
            id=self.id,
            key=self.key,
            category=self.category,
            root_cause=RootCause(self.area, self.explanation),
            recommended_fix=self.recommended_fix,
            run_ids=self.run_ids,
            size=self.size,
            places=self.places,
            evidence=self.evidence,
        )


@dataclass(frozen=True, slots=True)
class RootCause:
    area: str  # an `Area`; kept as recorded
    explanation: str


@dataclass(frozen=True, slots=True)
class RecordedCluster:
    """A cluster as an iteration records it (`Cluster.to_json`'s shape): the rules' or a
    model's rewrite of them (`written_by`). Clusters recorded before cause keys and places
    existed have neither (None)."""

    id: str
    category: str
    root_cause: RootCause
    recommended_fix: str
    run_ids: tuple[str, ...]
    size: int
    evidence: tuple[Evidence, ...]
    key: str | None = None
    places: tuple[Place, ...] | None = None
    written_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Its recorded JSON, keys in `Cluster.to_json`'s order; absent fields stay absent."""
        whole = {
            "id": self.id,
            "key": self.key,
            "category": self.category,
            "root_cause": {
                "area": self.root_cause.area,
                "explanation": self.root_cause.explanation,
            },
            "recommended_fix": self.recommended_fix,
            "run_ids": list(self.run_ids),
            "size": self.size,
            "places": None if self.places is None else [p.to_json() for p in self.places],
            "evidence": [item.to_json() for item in self.evidence],
            "written_by": self.written_by,
        }
        return {
            name: value
            for name, value in whole.items()
            if value is not None or name not in _ABSENT_WHEN_NONE
        }

    @classmethod
    def from_json(cls, recorded: Any) -> RecordedCluster:
        """A recorded cluster from its JSON, validated (raises pydantic's ValidationError)."""
        cluster: RecordedCluster = _RECORDED_CLUSTER.load(recorded)
        return cluster


_ABSENT_WHEN_NONE = frozenset({"key", "places", "written_by"})


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A fix ranked by the runs it would address, and the clusters it fixes."""

    fix: str
    runs: int
    cluster_ids: tuple[str, ...]
    area: str

    def to_json(self) -> dict[str, Any]:
        return {
            "fix": self.fix,
            "runs": self.runs,
            "cluster_ids": list(self.cluster_ids),
            "area": self.area,
        }


_RECORDED_CLUSTER = modelled(RecordedCluster)
_SUGGESTION = modelled(Suggestion)

# How ClustersRecorded stores its fields: validated on read, written as the JSON above.
RECORDED_CLUSTERS = PayloadField(
    lambda rows: [_RECORDED_CLUSTER.load(row) for row in rows],
    lambda clusters: [cluster.to_json() for cluster in clusters],
)
SUGGESTIONS = PayloadField(
    lambda rows: [_SUGGESTION.load(row) for row in rows],
    lambda items: [item.to_json() for item in items],
)


def cause_of(run: FailingRun) -> Finding:
    """A failing run's decisive root cause and the place it happened."""
    return decide(
        failure_signature(run),
        run.task_name or run.task_id,
        run.environment_name or run.environment_id,
    )


def cluster_failures(runs: Sequence[FailingRun]) -> list[Cluster]:
    """One cluster per root cause of the failing runs (other statuses are left out), largest
    first (then by key). Every failing run is in exactly one cluster. Raises `InvalidInput`
    when two runs share an id."""
    failing = sorted((r for r in runs if r.status in FAILING_STATUSES), key=lambda r: r.run_id)
    duplicates = sorted(run_id for run_id, n in Counter(r.run_id for r in failing).items() if n > 1)
    if duplicates:
        raise InvalidInput(f"failing runs must have distinct ids; repeated: {duplicates[:5]}")
    by_key: dict[str, list[tuple[FailingRun, Signature, Finding]]] = defaultdict(list)
    for run in failing:
        signature = failure_signature(run)
        finding = decide(
            signature, run.task_name or run.task_id, run.environment_name or run.environment_id
        )
        by_key[finding.key].append((run, signature, finding))
    clusters = [_describe(key, members) for key, members in by_key.items()]
    return sorted(clusters, key=lambda c: (-c.size, c.key))


def suggestions(clusters: Sequence[Cluster | RecordedCluster]) -> list[Suggestion]:
    """Fixes ranked by how many runs they would address: clusters with the same fix and area
    count together. Ties: the fix whose first cluster comes first, then the fix's text.
    Takes clusters or recorded ones (as an LLM may have rewritten them)."""
    runs: dict[tuple[str, str], int] = defaultdict(int)
    cluster_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    for cluster in clusters:
        recorded = cluster.recorded() if isinstance(cluster, Cluster) else cluster
        fix = (recorded.recommended_fix, recorded.root_cause.area)
        runs[fix] += recorded.size
        cluster_ids[fix].append(recorded.id)
    ranked = sorted(runs, key=lambda fix: (-runs[fix], min(cluster_ids[fix]), fix))
    return [
        Suggestion(fix, runs[(fix, area)], tuple(sorted(cluster_ids[(fix, area)])), area)
        for fix, area in ranked
    ]


def _describe(key: str, members: list[tuple[FailingRun, Signature, Finding]]) -> Cluster:
    rule = members[0][2].rule
    facts = _facts(members)
    area = area_of(rule, facts)
    ranked = sorted(facts.places.items(), key=lambda item: (-item[1], item[0]))
    return Cluster(
        id="cl_" + hashlib.sha256(key.encode()).hexdigest()[:10],
        key=key,
        category=members[0][2].category,
        area=area,
        explanation=rule.explain(facts) + scope_remark(facts) + signals_remark(facts),
        recommended_fix=rule.fix(facts, area),
        run_ids=tuple(run.run_id for run, _, _ in members),
        places=tuple(Place(facts.place_kinds[name], name, n) for name, n in ranked),
        evidence=_evidence(members),
        signature=members[0][1],
    )


def _facts(members: list[tuple[FailingRun, Signature, Finding]]) -> ClusterFacts:
    statuses: Counter[int] = Counter()
    tools: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    final_answers: Counter[str] = Counter()
    examples: dict[str, str] = {}
    final_examples: dict[str, str] = {}
    signals: Counter[str] = Counter()
    places: Counter[str] = Counter()
    place_kinds: dict[str, str] = {}
    loop_reads = 0
    for _, signature, finding in members:
        places[finding.place[1]] += 1
        place_kinds.setdefault(finding.place[1], finding.place[0])
        signals.update(signature.fired_signals)
        if finding.rule.key == "doc_loop" and signature.repeated_read:
            loop_reads += signature.repeated_read[1]
        shown = next(
            (e for e in signature.errors if e.event == finding.event and e.text == finding.text),
            None,
        )
        if shown is not None:
            statuses.update(http_statuses_in([shown.message]))
            kinds.update(exception_names(shown.message))
            if shown.tool:
                tools[shown.tool] += 1
            messages[shown.message] += 1
            examples.setdefault(shown.message, shown.text)
        if signature.final_answer:
            final_answers[signature.final_answer] += 1
            final_examples.setdefault(signature.final_answer, signature.final_text)
    return ClusterFacts(
        runs=len(members),
        tasks=tuple(sorted({run.task_name or run.task_id for run, _, _ in members})),
        environments=tuple(
            sorted({run.environment_name or run.environment_id for run, _, _ in members})
        ),
        statuses=statuses,
        hosts=Counter(h for _, s, _ in members for h in s.hosts),
        routes=Counter(r for _, s, _ in members for r in s.routes),
        tools=tools,
        kinds=kinds,
        messages=messages,
        final_answers=final_answers,
        final_examples=final_examples,
        examples=examples,
        docs_gap=sum(s.docs_gap for _, s, _ in members),
        read_docs=sum(s.read_docs for _, s, _ in members),
        ended_by_time_limit=sum(
            run.status == "timed_out" or run.termination_reason == "timeout"
            for run, _, _ in members
        ),
        signals=signals,
        places=places,
        place_kinds=place_kinds,
        loop_reads=loop_reads,
    )


def _evidence(members: list[tuple[FailingRun, Signature, Finding]]) -> tuple[Evidence, ...]:
    """A few items, one per run, variants first: the first run of each distinct place, then
    of each distinct fingerprint, then of each distinct snippet, then the other runs, each
    tier in run-id order."""
    items = [
        (
            finding.place[1],
            finding.fingerprint,
            Evidence(run.run_id, finding.event, _snippet(finding.text)),
        )
        for run, _, finding in members
    ]
    picked: list[Evidence] = []
    tiers: tuple[Callable[[str, str, Evidence], str], ...] = (
        lambda place, fingerprint, item: place,
        lambda place, fingerprint, item: fingerprint,
        lambda place, fingerprint, item: item.snippet,
        lambda place, fingerprint, item: item.run_id,
    )
    for tier in tiers:
        seen = {tier(p, fp, item) for p, fp, item in items if item in picked}
        for p, fp, item in items:
            if len(picked) < MAX_EVIDENCE and item not in picked and tier(p, fp, item) not in seen:
                seen.add(tier(p, fp, item))
                picked.append(item)
    return tuple(picked)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SNIPPET else text[: MAX_SNIPPET - 1] + "…"
