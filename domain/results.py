"""Iteration results (docs/spec.md §7): the summary, the environment comparison and the comparison
of two iterations, computed from per-run rows. Pure: projections call it once per iteration."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.comparisons import compare_iterations
from domain.repeat_stability import Outcome, repeat_stability
from domain.signals.aggregates import RunValues, compute_aggregates
from domain.signals.config import SignalConfig
from domain.statistics import (
    CONFIDENCES,
    DEFAULT_CONFIDENCE,
    confidence_key,
    mean_sd,
    stored_intervals,
    wilson,
)
from domain.vocabulary import FAILING as FAILING_STATUSES
from domain.vocabulary import TERMINAL

STATUSES = TERMINAL
FAILING = frozenset(FAILING_STATUSES)


@dataclass(frozen=True, slots=True)
class RunRow:
    """What results need of one run."""

    run_id: str
    task_id: str
    environment_id: str
    status: str
    stats: Mapping[str, Any]
    signal_values: Mapping[str, Any]  # signal id -> the run's value (None: missing)


def score(rows: Sequence[RunRow]) -> float | None:
    """passed ÷ runs, cancelled runs left out; None when nothing counts."""
    counted = [row for row in rows if row.status != "cancelled"]
    if not counted:
        return None
    return sum(row.status == "passed" for row in counted) / len(counted)


def score_figures(rows: Sequence[RunRow]) -> dict[str, int]:
    """What a score's interval and comparisons need: passed runs of the counted ones."""
    counted = [row for row in rows if row.status != "cancelled"]
    return {"successes": sum(row.status == "passed" for row in counted), "n": len(counted)}


def _score_intervals(figures: Mapping[str, int]) -> dict[str, Any]:
    """A score's Wilson interval at every confidence, as stored (read: at_confidence)."""
    intervals = stored_intervals(
        {c: wilson(figures["successes"], figures["n"], c) for c in CONFIDENCES}
    )
    return {"score_intervals": intervals, "score_ci_method": "wilson", "score_figures": figures}


def _mean_figures(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    mean, sd = mean_sd(values)
    return {"mean": mean, "sd": sd, "n": len(values)}


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _numbers(rows: Sequence[RunRow], key: str) -> list[float]:
    return [float(row.stats[key]) for row in rows if row.stats.get(key) is not None]


def summarize(
    rows: Sequence[RunRow],
    task_names: Mapping[str, str],
    env_names: Mapping[str, str],
    config: SignalConfig | None,
) -> dict[str, Any]:
    """The summary and the signal aggregates of one iteration."""
    aggregates = (
        [
            result.to_json(stored=True)
            for result in compute_aggregates(
                config,
                [RunValues(row.task_id, row.environment_id, row.signal_values) for row in rows],
            )
        ]
        if config is not None
        else []
    )
    by_task: dict[str, list[RunRow]] = {task: [] for task in task_names}
    by_env: dict[str, list[RunRow]] = {env: [] for env in env_names}
    for row in rows:
        by_task.setdefault(row.task_id, []).append(row)
        by_env.setdefault(row.environment_id, []).append(row)

    tasks = [
        {
            "task_id": task,
            "name": task_names.get(task, task),
            "score": score(task_rows),
            **_score_intervals(score_figures(task_rows)),
            "runs": len(task_rows),
            "by_environment": {
                env: score([r for r in task_rows if r.environment_id == env]) for env in by_env
            },
        }
        for task, task_rows in by_task.items()
    ]
    environments: list[dict[str, Any]] = []
    for env, env_rows in by_env.items():
        tokens = [
            float(r.stats["token_total"])
            for r in env_rows
            if r.stats.get("token_total") is not None
        ]
        durations = _numbers(env_rows, "duration")
        environments.append(
            {
                "environment_id": env,
                "name": env_names.get(env, env),
                "score": score(env_rows),
                **_score_intervals(score_figures(env_rows)),
                # What comparisons with another environment need (dropped from answers).
                "samples": {
                    "durations": durations,
                    "tokens": _mean_figures(tokens),
                    "cost": _mean_figures(_numbers(env_rows, "cost")),
                },
                "runs": len(env_rows),
                "median_duration": _median(durations),
                "mean_tokens": _mean(tokens),
                "mean_cost": _mean(_numbers(env_rows, "cost")),
                "aggregates": {
                    agg["id"]: agg["by_environment"].get(env, {}).get("value") for agg in aggregates
                },
            }
        )
    scores: list[float] = [e["score"] for e in environments if e["score"] is not None]
    best = max(scores) if scores else None
    for entry in environments:
        entry["score_delta_to_best"] = (
            None if best is None or entry["score"] is None else entry["score"] - best
        )
    return {
        "summary": {
            "runs": {status: sum(r.status == status for r in rows) for status in STATUSES},
            "score": score(rows),
            **_score_intervals(score_figures(rows)),
            "tasks": tasks,
            "environments": environments,
            "stability": repeat_stability(
                Outcome(r.task_id, r.environment_id, r.status == "passed")
                for r in rows
                if r.status != "cancelled"
            ),
        },
        "aggregates": aggregates,
    }


def _pick(intervals: Mapping[str, Any] | None, confidence: float) -> Any:
    return None if intervals is None else intervals.get(confidence_key(confidence))


def public_group(group: Mapping[str, Any], confidence: float) -> dict[str, Any]:
    """A stored aggregate group as answered: `ci` at the confidence, figures left out."""
    answer = {k: v for k, v in group.items() if k not in ("intervals", "figures", "ci_method")}
    answer["ci"] = _pick(group.get("intervals"), confidence)
    answer["ci_method"] = group.get("ci_method")
    return answer


def public_aggregate(aggregate: Mapping[str, Any], confidence: float) -> dict[str, Any]:
    """A stored aggregate as answered, overall and in every group."""
    answer = public_group(
        {k: v for k, v in aggregate.items() if not k.startswith("by_")}, confidence
    )
    answer["by_environment"] = {
        k: public_group(g, confidence) for k, g in aggregate["by_environment"].items()
    }
    answer["by_task"] = {k: public_group(g, confidence) for k, g in aggregate["by_task"].items()}
    answer["by_task_environment"] = {
        task: {env: public_group(g, confidence) for env, g in envs.items()}
        for task, envs in aggregate["by_task_environment"].items()
    }
    return answer


_HIDDEN = ("score_intervals", "score_figures", "score_ci_method", "samples")


def public_scored(entry: Mapping[str, Any], confidence: float) -> dict[str, Any]:
    """A stored summary, task or environment as answered: `score_ci` at the confidence."""
    answer = {k: v for k, v in entry.items() if k not in _HIDDEN}
    if "score_intervals" in entry:
        answer["score_ci"] = _pick(entry["score_intervals"], confidence)
        answer["score_ci_method"] = entry.get("score_ci_method")
    return answer


def public_summary(summary: Mapping[str, Any], confidence: float) -> dict[str, Any]:
    """The stored summary as answered at a confidence (no environment comparison yet)."""
    answer = public_scored(summary, confidence)
    answer["tasks"] = [public_scored(t, confidence) for t in summary["tasks"]]
    answer["environments"] = [public_scored(e, confidence) for e in summary["environments"]]
    return answer


def compare(
    current: Mapping[str, Any],
    previous: Mapping[str, Any],
    number: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, Any]:
    """Iteration N beside an earlier one (domain.comparisons.compare_iterations)."""
    return compare_iterations(current, previous, number, confidence)
