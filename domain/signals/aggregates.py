"""Aggregate functions (docs/spec.md §4.6): a signal's per-run values folded over a group of runs.

Each function sees only the values that are present (missing ones are counted, never passed)
and is pure and deterministic: sums use exact or correctly rounded arithmetic, and every
object comes out with its keys in a fixed order.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from domain.signals.aggregate_intervals import NONE as NO_INTERVAL
from domain.signals.aggregate_intervals import GroupInterval, group_interval
from domain.signals.config import Aggregate, Signal, SignalConfig, Where
from domain.signals.folds import as_number, category_key, is_truthy
from domain.statistics import DEFAULT_CONFIDENCE, confidence_key

DEFAULT_BINS = 10
DEFAULT_KEY = confidence_key(DEFAULT_CONFIDENCE)
# Boolean signals always report both keys, as if declared in this order.
BOOLEAN_CATEGORIES: tuple[str, ...] = ("true", "false")
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50), ("p90", 90), ("p99", 99))

Number = int | float
_NUMERIC = (bool, int, float)

_ORDER: dict[str, Callable[[Number, Number], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@dataclass(frozen=True, slots=True)
class RunValues:
    """One run's per-run signal values and the groups it belongs to."""

    task_id: str
    environment_id: str
    values: Mapping[str, Any]  # signal id -> per-run value; None or absent = missing


@dataclass(frozen=True, slots=True)
class GroupValue:
    """An aggregate over one group of runs, with how many had a value and how many did not."""

    value: Any
    n: int  # runs with a value
    missing: int  # runs whose value is missing
    # Not part of equality: it follows from the values (domain.signals.aggregate_intervals).
    interval: GroupInterval = field(default=NO_INTERVAL, compare=False)

    def to_json(self, stored: bool = False) -> dict[str, Any]:
        """The group's JSON; `stored` keeps every confidence's interval and the comparison
        figures (`intervals`, `figures`) for results to pick from at read time
        (domain.results.at_confidence), else `ci` is the 95% one."""
        answer: dict[str, Any] = {"value": self.value, "n": self.n, "missing": self.missing}
        intervals = self.interval.intervals
        if stored:
            answer["intervals"] = intervals
            if self.interval.figures is not None:
                answer["figures"] = self.interval.figures
        else:
            answer["ci"] = None if intervals is None else intervals.get(DEFAULT_KEY)
        answer["ci_method"] = self.interval.method
        return answer


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """One aggregate of a config, overall and by environment, task and task x environment."""

    id: str
    signal_id: str
    fn: str
    label: str
    overall: GroupValue
    by_environment: dict[str, GroupValue]
    by_task: dict[str, GroupValue]
    by_task_environment: dict[str, dict[str, GroupValue]]  # task -> env -> value

    def to_json(self, stored: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "signal_id": self.signal_id,
            "fn": self.fn,
            "label": self.label,
            **self.overall.to_json(stored),
            "by_environment": _groups_json(self.by_environment, stored),
            "by_task": _groups_json(self.by_task, stored),
            "by_task_environment": {
                task: _groups_json(envs, stored) for task, envs in self.by_task_environment.items()
            },
        }


def _groups_json(groups: Mapping[str, GroupValue], stored: bool) -> dict[str, Any]:
    return {key: group.to_json(stored) for key, group in groups.items()}


def _numbers(values: Iterable[Any]) -> list[Number]:
    """The numeric values, booleans as 0/1 (anything else cannot be summed and is skipped)."""
    return [as_number(value) for value in values if isinstance(value, _NUMERIC)]


def _total(numbers: Sequence[Number]) -> Number:
    """Exact for ints; fsum for floats, so the order of the runs cannot change the result."""
    if all(isinstance(number, int) for number in numbers):
        return sum(numbers)
    return math.fsum(numbers)


def _mean(numbers: Sequence[Number]) -> float | None:
    """The arithmetic mean, None when there are no numbers."""
    return _total(numbers) / len(numbers) if numbers else None


def _median(values: Sequence[Any]) -> Number | None:
    """The middle value; the mean of the two middle values for an even count."""
    ordered = sorted(_numbers(values))
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _percentile(ordered: Sequence[Number], q: float) -> float:
    """The q-th percentile of sorted numbers by linear interpolation, as numpy computes it."""
    index = (len(ordered) - 1) * (q / 100)
    below = math.floor(index)
    above = min(below + 1, len(ordered) - 1)
    weight = index - below
    low, high = float(ordered[below]), float(ordered[above])
    step = high - low
    # numpy interpolates from the nearer neighbour, which keeps results within [low, high].
    return high - step * (1 - weight) if weight >= 0.5 else low + step * weight


def _histogram(ordered: Sequence[Number], bins: int) -> list[dict[str, Any]]:
    """`bins` equal-width bins from min to max, the last one closed on the right."""
    low, high = ordered[0], ordered[-1]
    width = (high - low) / bins
    if not 0 < width < math.inf:  # all equal, or a span floats cannot divide: one bin
        return [{"lo": low, "hi": high, "count": len(ordered)}]
    edges: list[Number] = [low, *(low + i * width for i in range(1, bins)), high]
    counts = [0] * bins
    for number in ordered:
        i = min(int((number - low) / width), bins - 1)
        # The division can round across an edge: settle on the bin the reported edges imply.
        while i > 0 and number < edges[i]:
            i -= 1
        while i < bins - 1 and number >= edges[i + 1]:
            i += 1
        counts[i] += 1
    return [{"lo": edges[i], "hi": edges[i + 1], "count": counts[i]} for i in range(bins)]


def _declared(signal: Signal) -> tuple[str, ...]:
    """The keys a signal always reports: its categories, or true/false for booleans."""
    if signal.categories:
        return signal.categories
    if signal.type == "boolean" and signal.value_kind in ("boolean", "histogram"):
        return BOOLEAN_CATEGORIES
    return ()


def _declared_first(declared: Mapping[str, Any], seen: Mapping[str, Any]) -> dict[str, Any]:
    """Declared keys in declared order, then the others sorted."""
    return {**declared, **dict(sorted(seen.items()))}


def _count_by_category(signal: Signal, values: Sequence[Any]) -> dict[str, int]:
    """Runs per category (histogram values add their counts); declared categories always."""
    declared: dict[str, int] = dict.fromkeys(_declared(signal), 0)
    others: dict[str, int] = {}
    for value in values:
        pairs = value.items() if isinstance(value, dict) else [(category_key(value), 1)]
        for key, count in pairs:
            counts = declared if key in declared else others
            counts[key] = counts.get(key, 0) + count
    return _declared_first(declared, others)


def _avg_by_category(
    values: Sequence[Any], by_values: Sequence[Any], by_signal: Signal | None
) -> dict[str, float | None]:
    """The mean of this signal over the runs in each category of the `by` signal."""
    categories = by_signal.categories if by_signal is not None else ()
    declared: dict[str, list[Number]] = {key: [] for key in categories}
    others: dict[str, list[Number]] = {}
    for value, by in zip(values, by_values, strict=True):
        key = category_key(by)
        numbers = declared[key] if key in declared else others.setdefault(key, [])
        if isinstance(value, _NUMERIC):
            numbers.append(as_number(value))
    return {key: _mean(numbers) for key, numbers in _declared_first(declared, others).items()}


def _distribution(aggregate: Aggregate, signal: Signal, values: Sequence[Any]) -> Any:
    """Summary statistics and a histogram for numbers; shares per value otherwise."""
    if signal.value_kind == "number":
        ordered = sorted(_numbers(values))
        if not ordered:
            return None
        return {
            "count": len(ordered),
            "min": ordered[0],
            "max": ordered[-1],
            "mean": _mean(ordered),
            **{name: _percentile(ordered, q) for name, q in PERCENTILES},
            "histogram": _histogram(ordered, aggregate.bins or DEFAULT_BINS),
        }
    counts = _count_by_category(signal, values)
    total = sum(counts.values())
    # No values (or only empty histograms): there is nothing to share out.
    return {key: count / total for key, count in counts.items()} if total else None


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps kinds apart: True is not 1, but 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, _NUMERIC) and isinstance(b, _NUMERIC):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _satisfies(value: Any, op: str, operand: Any) -> bool:
    """Whether a value passes one `where` operator."""
    if op == "eq":
        return _same(value, operand)
    if op == "ne":
        return not _same(value, operand)
    if op == "in":
        return any(_same(value, item) for item in operand)
    return isinstance(value, _NUMERIC) and _ORDER[op](as_number(value), as_number(operand))


def _count_where(where: Where | None, values: Sequence[Any]) -> int:
    """Runs whose value satisfies the `where` condition."""
    if where is None:
        raise ValueError("count_where needs a `where` condition")
    conditions = where.operators
    return sum(1 for value in values if all(_satisfies(value, *c) for c in conditions))


def _rate(values: Sequence[Any]) -> float | None:
    """Truthy runs over runs with a value, None when there are none."""
    return sum(1 for value in values if is_truthy(value)) / len(values) if values else None


def _mode(values: Sequence[Any]) -> Any:
    """The most frequent value; ties go to the smallest JSON encoding."""
    counts: dict[str, int] = {}
    examples: dict[str, Any] = {}
    for value in values:
        # The JSON encoding tells True from 1 and makes histogram objects comparable.
        key = json.dumps(value, sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
        examples.setdefault(key, value)
    if not counts:
        return None
    return examples[min(counts, key=lambda key: (-counts[key], key))]


# The functions of the values alone; numeric ones read booleans as 0/1 (sum is 0 when empty,
# avg/min/max/median None).
_OF_VALUES: dict[str, Callable[[Sequence[Any]], Any]] = {
    "count": len,
    "rate": _rate,
    "sum": lambda values: _total(_numbers(values)),
    "avg": lambda values: _mean(_numbers(values)),
    "min": lambda values: min(_numbers(values), default=None),
    "max": lambda values: max(_numbers(values), default=None),
    "median": _median,
    "mode": _mode,
}


def aggregate_values(
    aggregate: Aggregate,
    signal: Signal,
    values: Sequence[Any],
    by_values: Sequence[Any] | None = None,
    by_signal: Signal | None = None,
) -> Any:
    """The aggregate over the given values, missing (None) ones already removed.

    For avg_by_category, by_values[i] is the `by` signal's value in the same run as values[i]
    (pairs where either is missing are already removed).
    """
    fn = aggregate.fn
    if fn in _OF_VALUES:
        return _OF_VALUES[fn](values)
    if fn == "count_where":
        return _count_where(aggregate.where, values)
    if fn == "count_by_category":
        return _count_by_category(signal, values)
    if fn == "avg_by_category":
        if by_values is None:
            raise ValueError("avg_by_category needs the `by` signal's values")
        return _avg_by_category(values, by_values, by_signal)
    if fn == "distribution":
        return _distribution(aggregate, signal, values)
    raise ValueError(f"unknown aggregate function {fn!r}")


def _group_value(
    aggregate: Aggregate, signal: Signal, by_signal: Signal | None, runs: Sequence[RunValues]
) -> GroupValue:
    """The aggregate over one group of runs, with n and missing."""
    present = [run for run in runs if run.values.get(signal.id) is not None]
    values = [run.values[signal.id] for run in present]
    by_values: list[Any] | None = None
    if by_signal is not None:
        pairs = [
            (run.values[signal.id], run.values[by_signal.id])
            for run in present
            if run.values.get(by_signal.id) is not None
        ]
        values, by_values = [value for value, _ in pairs], [by for _, by in pairs]
    value = aggregate_values(aggregate, signal, values, by_values, by_signal)
    interval = group_interval(aggregate.fn, signal.value_kind, values)
    return GroupValue(
        value=value, n=len(present), missing=len(runs) - len(present), interval=interval
    )


def _partition(
    runs: Sequence[RunValues], key: Callable[[RunValues], str]
) -> dict[str, list[RunValues]]:
    """The runs grouped by a key, groups sorted by key."""
    groups: dict[str, list[RunValues]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return dict(sorted(groups.items()))


def compute_aggregates(config: SignalConfig, runs: Sequence[RunValues]) -> list[AggregateResult]:
    """Every aggregate of the config, in config order, overall and per group."""
    by_task = _partition(runs, lambda run: run.task_id)
    by_environment = _partition(runs, lambda run: run.environment_id)
    by_task_environment = {
        task: _partition(task_runs, lambda run: run.environment_id)
        for task, task_runs in by_task.items()
    }
    results = []
    for aggregate in config.aggregates:
        signal = config.signal(aggregate.signal_id)
        by = aggregate.by if aggregate.fn == "avg_by_category" else None
        group = partial(_group_value, aggregate, signal, config.signal(by) if by else None)
        results.append(
            AggregateResult(
                id=aggregate.id,
                signal_id=aggregate.signal_id,
                fn=aggregate.fn,
                label=aggregate.label,
                overall=group(runs),
                by_environment={env: group(rs) for env, rs in by_environment.items()},
                by_task={task: group(rs) for task, rs in by_task.items()},
                by_task_environment={
                    task: {env: group(rs) for env, rs in envs.items()}
                    for task, envs in by_task_environment.items()
                },
            )
        )
    return results
