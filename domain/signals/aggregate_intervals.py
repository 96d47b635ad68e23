"""The interval of an aggregate over one group (docs/results.md): Wilson for rates, Student-t
for means, bootstrap for medians and distribution percentiles; none for counts and sums.

Computed once per group at every confidence a reader may ask for, so a read only looks one up;
`figures` are what a later comparison needs (successes and n of a rate, mean, sd and n of a
mean)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from domain.signals.folds import as_number, is_truthy
from domain.statistics import (
    CONFIDENCES,
    bootstrap_percentiles,
    mean_sd,
    stored_intervals,
    t_interval,
    wilson,
)

CiMethod = Literal["wilson", "t", "bootstrap"]
_NUMERIC = (bool, int, float)
_DISTRIBUTION_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))


@dataclass(frozen=True, slots=True)
class GroupInterval:
    """An aggregate's intervals per confidence ('0.95' -> [low, high]; for a numeric
    distribution, percentile name -> that), its method and its comparison figures."""

    method: CiMethod | None = None
    intervals: dict[str, Any] | None = None
    figures: dict[str, Any] | None = None


NONE = GroupInterval()


def _numbers(values: Sequence[Any]) -> list[float]:
    return [float(as_number(value)) for value in values if isinstance(value, _NUMERIC)]


def group_interval(fn: str, value_kind: str, values: Sequence[Any]) -> GroupInterval:
    """The interval of aggregate `fn` over the present values of one group."""
    if fn == "rate":
        n = len(values)
        successes = sum(1 for value in values if is_truthy(value))
        return GroupInterval(
            "wilson",
            stored_intervals({c: wilson(successes, n, c) for c in CONFIDENCES}),
            {"kind": "rate", "successes": successes, "n": n},
        )
    if fn == "avg":
        numbers = _numbers(values)
        if not numbers:
            return GroupInterval("t")
        mean, sd = mean_sd(numbers)
        return GroupInterval(
            "t",
            stored_intervals({c: t_interval(mean, sd, len(numbers), c) for c in CONFIDENCES}),
            {"kind": "mean", "mean": mean, "sd": sd, "n": len(numbers)},
        )
    if fn == "median":
        found = bootstrap_percentiles(_numbers(values), [50.0])
        return GroupInterval("bootstrap", None if found is None else stored_intervals(found[50.0]))
    if fn == "distribution" and value_kind == "number":
        found = bootstrap_percentiles(_numbers(values), [q for _, q in _DISTRIBUTION_PERCENTILES])
        if found is None:
            return GroupInterval("bootstrap")
        by_confidence: dict[str, Any] = {}
        for name, q in _DISTRIBUTION_PERCENTILES:
            for key, interval in (stored_intervals(found[q]) or {}).items():
                by_confidence.setdefault(key, {})[name] = interval
        return GroupInterval("bootstrap", by_confidence)
    return NONE
