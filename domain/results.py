"""Iteration results (SPEC §7): the summary, the environment comparison and the comparison of
two iterations, computed from per-run rows. Pure: projections call it once per iteration."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.repeat_stability import Outcome, repeat_stability
from domain.signals.aggregates import RunValues, compute_aggregates
from domain.signals.config import SignalConfig

STATUSES = ("passed", "failed", "errored", "timed_out", "cancelled")
FAILING = frozenset({"failed", "errored", "timed_out"})


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
            result.to_json()
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
        environments.append(
            {
                "environment_id": env,
                "name": env_names.get(env, env),
                "score": score(env_rows),
                "runs": len(env_rows),
                "median_duration": _median(_numbers(env_rows, "duration")),
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


def _delta(current: Any, previous: Any) -> Any:
    if isinstance(current, bool) or isinstance(previous, bool):
        return None
    if isinstance(current, int | float) and isinstance(previous, int | float):
        return current - previous
    return None


def compare(current: Mapping[str, Any], previous: Mapping[str, Any], number: int) -> dict[str, Any]:
    """Iteration N beside an earlier one: per-task, per-environment and per-aggregate deltas."""
    cur, prev = current["summary"], previous["summary"]
    prev_tasks = {t["task_id"]: t for t in prev["tasks"]}
    prev_envs = {e["environment_id"]: e for e in prev["environments"]}
    prev_aggs = {a["id"]: a for a in previous["aggregates"]}
    return {
        "iteration": number,
        "score_delta": _delta(cur["score"], prev["score"]),
        "tasks": [
            {
                "task_id": t["task_id"],
                "score": t["score"],
                "previous": prev_tasks.get(t["task_id"], {}).get("score"),
                "delta": _delta(t["score"], prev_tasks.get(t["task_id"], {}).get("score")),
            }
            for t in cur["tasks"]
        ],
        "environments": [
            {
                "environment_id": e["environment_id"],
                "score": e["score"],
                "previous": prev_envs.get(e["environment_id"], {}).get("score"),
                "delta": _delta(e["score"], prev_envs.get(e["environment_id"], {}).get("score")),
            }
            for e in cur["environments"]
        ],
        "aggregates": [
            {
                "id": a["id"],
                "value": a["value"],
                "previous": prev_aggs.get(a["id"], {}).get("value"),
                "delta": _delta(a["value"], prev_aggs.get(a["id"], {}).get("value")),
            }
            for a in current["aggregates"]
        ],
    }
