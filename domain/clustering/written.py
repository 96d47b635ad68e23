"""LLM-written clusters (docs/spec.md §7): a model names the clusters, explains their root causes
and writes their fixes, starting from the deterministic clusters and their evidence.

Pure: this module writes the question (`cluster_question`) and turns the model's structured
answer into clusters (`apply_written_clusters`); asking is infra's job. Whatever the model
answers, every failing run ends in exactly one cluster: a run it claims twice stays with its
first claim, a run it forgets stays in what is left of its deterministic cluster, and runs or
clusters it invents are ignored. A model may merge deterministic clusters (`from_clusters`
lists several) or split one (`run_ids` names the part it takes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from domain.clustering.explanations import Area
from domain.errors import InvalidInput

AREAS: tuple[str, ...] = get_args(Area)
MAX_CLUSTERS = 50
MAX_TEXT = 600  # per written field: a name is short, an explanation a paragraph

# The answer's JSON Schema: the judge adapters force it as a tool input / response format.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "clusters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "category": {"type": "string", "description": "Short human name."},
                    "area": {"type": "string", "enum": list(AREAS)},
                    "explanation": {"type": "string", "description": "The root cause."},
                    "recommended_fix": {"type": "string"},
                    "from_clusters": {"type": "array", "items": {"type": "string"}},
                    "run_ids": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Only to split a cluster: the runs this one takes.",
                    },
                    "evidence": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "run_id": {"type": "string"},
                                "event": {"type": ["integer", "null"]},
                                "snippet": {"type": "string"},
                            },
                            "required": ["run_id", "snippet"],
                        },
                    },
                },
                "required": [
                    "category",
                    "area",
                    "explanation",
                    "recommended_fix",
                    "from_clusters",
                ],
            },
        }
    },
    "required": ["clusters"],
}

INSTRUCTIONS = (
    "You review the failing runs of an experiment in which AI agents tried to use a developer "
    "product. The runs were grouped deterministically into the clusters below, each with "
    "evidence from the agents' transcripts. For each recurring problem write: a short category "
    "name (like 'Auth failures'), the root-cause area (product: the product itself; docs: its "
    "documentation; infra: timeouts, outages, the environment; agent: the agent's own "
    "behaviour), an explanation of the root cause that cites the evidence, and a concrete "
    "recommended fix for the team that ships the product. You may merge clusters that are the "
    "same problem (list all their ids in from_clusters) or split one (give each part its "
    "run_ids). Cite evidence only from the runs shown. Answer with the tool."
)


@dataclass(frozen=True, slots=True)
class WrittenCluster:
    """What a model wrote about one cluster, run-level membership already resolved."""

    id: str
    category: str
    area: str
    explanation: str
    recommended_fix: str
    run_ids: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "root_cause": {"area": self.area, "explanation": self.explanation},
            "recommended_fix": self.recommended_fix,
            "run_ids": list(self.run_ids),
            "size": len(self.run_ids),
            "evidence": list(self.evidence),
            "written_by": "model",
        }


def cluster_question(clusters: Sequence[dict[str, Any]]) -> str:
    """The user message: every deterministic cluster as compact JSON (recorded clusters, as
    `Cluster.to_json` gives them)."""
    shown = [
        {
            "id": c["id"],
            "category": c["category"],
            "area": c["root_cause"]["area"],
            "explanation": c["root_cause"]["explanation"],
            "recommended_fix": c["recommended_fix"],
            "size": c["size"],
            "run_ids": c["run_ids"][:20],
            "evidence": c["evidence"],
        }
        for c in clusters
    ]
    return INSTRUCTIONS + "\n\nClusters:\n" + json.dumps(shown, ensure_ascii=False, indent=1)


def apply_written_clusters(clusters: Sequence[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """The recorded clusters the model's answer describes, as JSON like `Cluster.to_json`,
    largest first. Raises `InvalidInput` when the answer is not usable at all (not the
    schema's shape, or no cluster survives); the caller then keeps the deterministic ones."""
    written = _parse(answer)
    by_id = {c["id"]: c for c in clusters}
    claimed: set[str] = set()
    result: list[WrittenCluster] = []
    for item in written:
        sources = [cid for cid in dict.fromkeys(item["from_clusters"]) if cid in by_id]
        pool = [run for cid in sources for run in by_id[cid]["run_ids"]]
        if item.get("run_ids"):
            wanted = set(item["run_ids"])
            pool = [run for run in pool if run in wanted]
        runs = tuple(run for run in pool if run not in claimed)
        if not runs:
            continue
        claimed.update(runs)
        result.append(
            WrittenCluster(
                id=_cluster_id(runs),
                category=_text(item["category"]),
                area=item["area"],
                explanation=_text(item["explanation"]),
                recommended_fix=_text(item["recommended_fix"]),
                run_ids=runs,
                evidence=_evidence(item.get("evidence") or [], runs, sources, by_id),
            )
        )
    if not result:
        raise InvalidInput("the model's clusters cover none of the failing runs")
    # What the model left out stays in its deterministic cluster, as the rules described it.
    leftovers: list[dict[str, Any]] = []
    for cluster in clusters:
        runs = tuple(run for run in cluster["run_ids"] if run not in claimed)
        if runs:
            leftovers.append(_remainder(cluster, runs))
    combined = [c.to_json() for c in result] + leftovers
    return sorted(combined, key=lambda c: (-c["size"], c["id"]))


def _parse(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, dict) or not isinstance(answer.get("clusters"), list):
        raise InvalidInput("the model's answer has no list of clusters")
    items = []
    for index, item in enumerate(answer["clusters"][:MAX_CLUSTERS]):
        where = f"clusters[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: not an object")
        for field in ("category", "explanation", "recommended_fix"):
            if not isinstance(item.get(field), str) or not item[field].strip():
                raise InvalidInput(f"{where}.{field}: a non-empty text is required")
        if item.get("area") not in AREAS:
            raise InvalidInput(f"{where}.area: must be one of {', '.join(AREAS)}")
        sources = item.get("from_clusters")
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise InvalidInput(f"{where}.from_clusters: a list of cluster ids is required")
        runs = item.get("run_ids")
        if runs is not None and not (
            isinstance(runs, list) and all(isinstance(r, str) for r in runs)
        ):
            raise InvalidInput(f"{where}.run_ids: a list of run ids is expected")
        items.append(item)
    return items


def _evidence(
    cited: list[Any],
    runs: tuple[str, ...],
    sources: list[str],
    by_id: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], ...]:
    """The model's citations that point at this cluster's runs; else the rules' evidence."""
    members = set(runs)
    kept = [
        {
            "run_id": item["run_id"],
            "event": item.get("event") if isinstance(item.get("event"), int) else None,
            "snippet": _text(str(item.get("snippet", "")), 200),
        }
        for item in cited
        if isinstance(item, dict) and item.get("run_id") in members
    ]
    if not kept:
        kept = [e for cid in sources for e in by_id[cid]["evidence"] if e["run_id"] in members]
    return tuple(kept[:5])


def _remainder(cluster: dict[str, Any], runs: tuple[str, ...]) -> dict[str, Any]:
    if len(runs) == cluster["size"]:
        return dict(cluster)
    members = set(runs)
    return {
        **cluster,
        "id": _cluster_id(runs),
        "run_ids": list(runs),
        "size": len(runs),
        "evidence": [e for e in cluster["evidence"] if e["run_id"] in members],
    }


def _cluster_id(runs: Sequence[str]) -> str:
    return "cl_" + hashlib.sha256("\n".join(sorted(runs)).encode()).hexdigest()[:10]


def _text(value: str, limit: int = MAX_TEXT) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
