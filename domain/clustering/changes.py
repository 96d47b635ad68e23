"""How an iteration's failure clusters changed since an earlier one: new, resolved, grown,
shrunk or unchanged, matched by each cluster's stable cause key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Display order: what needs attention first.
CHANGES = ("new", "grown", "shrunk", "unchanged", "resolved")


def cluster_key(cluster: Mapping[str, Any]) -> str:
    """A recorded cluster's cause key; clusters recorded before keys existed match by name."""
    key = cluster.get("key")
    return str(key) if key else str(cluster.get("category", "")).casefold()


def cluster_changes(
    current: Sequence[Mapping[str, Any]], previous: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per cause in either iteration: its key, name (the current one, else the
    previous), runs now and then, and the change. New and grown first, then by runs now."""
    now = _by_key(current)
    then = _by_key(previous)
    rows = []
    for key in dict.fromkeys([*now, *then]):
        cluster = now.get(key) or then[key]
        runs = _size(now.get(key))
        before = _size(then.get(key))
        if key not in then:
            change = "new"
        elif key not in now:
            change = "resolved"
        else:
            change = "grown" if runs > before else "shrunk" if runs < before else "unchanged"
        rows.append(
            {
                "key": key,
                "category": cluster.get("category", key),
                "change": change,
                "runs": runs,
                "previous_runs": before,
                "delta": runs - before,
            }
        )
    return sorted(
        rows, key=lambda r: (CHANGES.index(r["change"]), -r["runs"], -r["previous_runs"], r["key"])
    )


def _by_key(clusters: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Clusters by key; a model may have split one cause into several clusters: they add up."""
    found: dict[str, dict[str, Any]] = {}
    for cluster in clusters:
        key = cluster_key(cluster)
        if key in found:
            found[key]["size"] = _size(found[key]) + _size(cluster)
        else:
            found[key] = {**cluster, "size": _size(cluster)}
    return dict(found)


def _size(cluster: Mapping[str, Any] | None) -> int:
    if cluster is None:
        return 0
    return int(cluster.get("size", len(cluster.get("run_ids", []))))
