"""Comparisons with significance (docs/results.md): each environment against a baseline, and an
iteration against an earlier one. Built at read time from the figures results store at
completion (successes and n, mean/sd/n, durations), never from transcripts.

Every entry is `{delta, ci, p_value, p_adjusted, verdict, method}`; rates use Newcombe's
interval and Fisher's exact test, means Welch's interval and t-test, the median duration a
bootstrap interval (no test: p_value and verdict null). The p-values of one comparison block
(the environment comparison, or the iteration comparison) are one Holm family.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from domain.clustering.changes import cluster_changes
from domain.errors import InvalidInput
from domain.significance import (
    MIN_RUNS,
    TOO_FEW,
    fisher_exact,
    holm,
    paired_t_test,
    verdict,
    welch_p_value,
)
from domain.statistics import bootstrap_median_difference, newcombe, welch_interval

Entry = dict[str, Any]


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def rate_difference(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, confidence: float
) -> Entry:
    """a - b for two rates given as {successes, n}: Newcombe interval, Fisher p-value."""
    if not a or not b or not a.get("n") or not b.get("n"):
        return _entry(None, None, None, "newcombe+fisher")
    ka, na, kb, nb = int(a["successes"]), int(a["n"]), int(b["successes"]), int(b["n"])
    delta = ka / na - kb / nb
    tested = na >= MIN_RUNS and nb >= MIN_RUNS
    return _entry(
        delta,
        _listed(newcombe(ka, na, kb, nb, confidence)),
        fisher_exact(ka, na, kb, nb) if tested else None,
        "newcombe+fisher",
    )


def mean_difference(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, confidence: float
) -> Entry:
    """a - b for two means given as {mean, sd, n}: Welch interval and p-value."""
    if not a or not b or a.get("mean") is None or b.get("mean") is None:
        return _entry(None, None, None, "welch")
    figures = (a["mean"], a["sd"], int(a["n"]), b["mean"], b["sd"], int(b["n"]))
    return _entry(
        a["mean"] - b["mean"],
        _listed(welch_interval(*figures, confidence=confidence)),
        welch_p_value(*figures),
        "welch",
    )


def median_difference(a: Sequence[float], b: Sequence[float], confidence: float) -> Entry:
    """median(a) - median(b) with a bootstrap interval; not tested (p_value null)."""
    if not a or not b:
        return _entry(None, None, None, "bootstrap", tested=False)
    delta = _median(a) - _median(b)
    interval = bootstrap_median_difference(a, b, confidence)
    return _entry(delta, _listed(interval), None, "bootstrap", tested=False)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _entry(
    delta: float | None, ci: list[float] | None, p: float | None, method: str, tested: bool = True
) -> Entry:
    # `tested` False: a difference no test applies to (verdict stays null, not "too few").
    return {
        "delta": delta,
        "ci": ci,
        "p_value": p,
        "p_adjusted": None,
        "verdict": TOO_FEW if tested else None,
        "method": method,
    }


def correct(entries: Sequence[MutableMapping[str, Any]], confidence: float) -> None:
    """Holm across one family of entries: fills p_adjusted and the verdicts."""
    adjusted = holm([entry["p_value"] for entry in entries])
    for entry, p in zip(entries, adjusted, strict=True):
        entry["p_adjusted"] = p
        if entry["verdict"] is not None or p is not None:
            entry["verdict"] = verdict(p, confidence)


# -- environments against a baseline -------------------------------------------------------------


def baseline_environment(environments: Sequence[Mapping[str, Any]], wanted: str | None) -> str:
    """The baseline's id: the one named (id or exact name), else the best score's."""
    if wanted is not None:
        for env in environments:
            if wanted in (env["environment_id"], env.get("name")):
                return str(env["environment_id"])
        known = ", ".join(str(e["environment_id"]) for e in environments) or "none"
        raise InvalidInput(
            f"no environment {wanted!r} in this iteration (environments: {known})",
            (("baseline", f"unknown environment {wanted!r}"),),
        )
    scored = [e for e in environments if e.get("score") is not None]
    best = max(scored or environments, key=lambda e: e.get("score") or 0.0)
    return str(best["environment_id"])


def compare_environments(
    stored: Sequence[Mapping[str, Any]],
    answered: Sequence[MutableMapping[str, Any]],
    baseline: str | None,
    confidence: float,
) -> None:
    """Each answered environment gains `comparison` against the baseline (null for the
    baseline itself); `stored` are the same environments with their figures."""
    if not stored:
        return
    base_id = baseline_environment(stored, baseline)
    base = next(e for e in stored if e["environment_id"] == base_id)
    family: list[Entry] = []
    for env, out in zip(stored, answered, strict=True):
        if env["environment_id"] == base_id:
            out["comparison"] = None
            continue
        samples, base_samples = env.get("samples", {}), base.get("samples", {})
        comparison: dict[str, Any] = {
            "baseline": base_id,
            "score": rate_difference(
                env.get("score_figures"), base.get("score_figures"), confidence
            ),
            "median_duration": median_difference(
                samples.get("durations", []), base_samples.get("durations", []), confidence
            ),
            "mean_tokens": mean_difference(
                samples.get("tokens"), base_samples.get("tokens"), confidence
            ),
            "mean_cost": mean_difference(samples.get("cost"), base_samples.get("cost"), confidence),
        }
        family += [comparison["score"], comparison["mean_tokens"], comparison["mean_cost"]]
        out["comparison"] = comparison
    correct(family, confidence)


# -- an iteration against an earlier one ---------------------------------------------------------


def _aggregate_difference(
    current: Mapping[str, Any], previous: Mapping[str, Any] | None, confidence: float
) -> Entry:
    figures = current.get("figures")
    before = previous.get("figures") if previous else None
    if figures and before and figures.get("kind") == before.get("kind"):
        if figures["kind"] == "rate":
            return rate_difference(figures, before, confidence)
        return mean_difference(figures, before, confidence)
    value, old = current.get("value"), previous.get("value") if previous else None
    return _entry(_number_delta(value, old), None, None, "none", tested=False)


def _number_delta(current: Any, previous: Any) -> Any:
    if isinstance(current, bool) or isinstance(previous, bool):
        return None
    if isinstance(current, int | float) and isinstance(previous, int | float):
        return current - previous
    return None


def _merge(row: dict[str, Any], entry: Entry) -> dict[str, Any]:
    """An existing compare row plus the entry's statistics (its delta, when known, wins)."""
    for key in ("delta", "ci", "p_value", "p_adjusted", "verdict"):
        if key == "delta" and entry[key] is None:
            continue
        row[key] = entry[key]
    return row


def compare_iterations(
    current: Mapping[str, Any], previous: Mapping[str, Any], number: int, confidence: float
) -> dict[str, Any]:
    """Iteration N beside an earlier one: the overall score, tasks, environments and
    aggregates, each delta with its interval and a Holm-corrected verdict, and the
    task-paired test where tasks are shared."""
    cur, prev = current["summary"], previous["summary"]
    prev_tasks = {t["task_id"]: t for t in prev["tasks"]}
    prev_envs = {e["environment_id"]: e for e in prev["environments"]}
    prev_aggs = {a["id"]: a for a in previous["aggregates"]}
    family: list[Entry] = []

    def scored(entry: Mapping[str, Any], before: Mapping[str, Any] | None) -> Entry:
        found = rate_difference(
            entry.get("score_figures"), before.get("score_figures") if before else None, confidence
        )
        family.append(found)
        return found

    overall = scored(cur, prev)
    tasks, envs, aggregates = [], [], []
    task_entries, env_entries, agg_entries = [], [], []
    for t in cur["tasks"]:
        before = prev_tasks.get(t["task_id"])
        tasks.append(
            {
                "task_id": t["task_id"],
                "score": t["score"],
                "previous": before.get("score") if before else None,
                "delta": _number_delta(t["score"], before.get("score") if before else None),
            }
        )
        task_entries.append(scored(t, before))
    for e in cur["environments"]:
        before = prev_envs.get(e["environment_id"])
        envs.append(
            {
                "environment_id": e["environment_id"],
                "score": e["score"],
                "previous": before.get("score") if before else None,
                "delta": _number_delta(e["score"], before.get("score") if before else None),
            }
        )
        env_entries.append(scored(e, before))
    for a in current["aggregates"]:
        before = prev_aggs.get(a["id"])
        aggregates.append(
            {
                "id": a["id"],
                "value": a["value"],
                "previous": before.get("value") if before else None,
                "delta": _number_delta(a["value"], before.get("value") if before else None),
            }
        )
        found = _aggregate_difference(a, before, confidence)
        family.append(found)
        agg_entries.append(found)

    differences = [
        t["score"] - prev_tasks[t["task_id"]]["score"]
        for t in cur["tasks"]
        if t["score"] is not None
        and t["task_id"] in prev_tasks
        and prev_tasks[t["task_id"]].get("score") is not None
    ]
    paired: dict[str, Any] | None = None
    if differences:
        test = paired_t_test(differences, confidence)
        paired = {
            "tasks": test.pairs,
            "mean_delta": test.mean_delta,
            "ci": _listed(test.ci),
            "p_value": test.p_value,
            "p_adjusted": None,
            "verdict": TOO_FEW,
            "method": "paired-t",
        }
        family.append(paired)
    correct(family, confidence)

    document: dict[str, Any] = {
        "iteration": number,
        "score_delta": _number_delta(cur["score"], prev["score"]),
        "score": {k: overall[k] for k in ("delta", "ci", "p_value", "p_adjusted", "verdict")},
        "tasks": [_merge(row, e) for row, e in zip(tasks, task_entries, strict=True)],
        "environments": [_merge(row, e) for row, e in zip(envs, env_entries, strict=True)],
        "aggregates": [_merge(row, e) for row, e in zip(aggregates, agg_entries, strict=True)],
    }
    if paired is not None:
        document["paired"] = paired
    # Failure clusters by stable cause key: new, resolved, grown, shrunk.
    document["clusters"] = cluster_changes(
        current.get("failure_clusters", []), previous.get("failure_clusters", [])
    )
    return document
