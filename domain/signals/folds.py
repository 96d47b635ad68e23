"""Message folds (docs/spec.md §4.4): many observations of a message-scoped signal -> one run
value."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

Observation = bool | int | float | str


def is_truthy(value: Any) -> bool:
    """True, a non-zero number, a non-empty string or object (docs/spec.md §4.4)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | dict | list):
        return bool(value)
    return False


def as_number(value: bool | int | float) -> int | float:
    return int(value) if isinstance(value, bool) else value


def category_key(value: Any) -> str:
    """How a value is written as an object key: booleans as "true"/"false", numbers as JSON."""
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return json.dumps(value)


def fold(fn: str, observations: Sequence[Observation]) -> Any:
    """Fold one run's observations with `fn` (sum, count, average, min, max, histogram)."""
    kinds = frozenset(map(type, observations))
    if kinds and kinds <= _NUMBERS:
        # Only numbers, as pattern signals observe: the same results, without a Python call
        # per observation.
        if fn == "count":  # truthy = non-zero
            return len(observations) - observations.count(0)
        if fn == "sum" or fn == "average":
            total = sum(cast("Sequence[float]", observations))
            return total if fn == "sum" else total / len(observations)
        if fn == "histogram" and kinds in (_BOOLS, _INTS):
            # (One kind only: True == 1 and 0.0 == -0.0, but their keys differ.)
            tally: dict[Observation, int] = {}
            for value in observations:
                tally[value] = tally.get(value, 0) + 1
            return dict(sorted((category_key(value), n) for value, n in tally.items()))
    return _fold(fn, observations)


def _fold(fn: str, observations: Sequence[Observation]) -> Any:
    if fn == "count":
        return sum(1 for value in observations if is_truthy(value))
    if fn == "histogram":
        counts: dict[str, int] = {}
        for value in observations:
            key = category_key(value)
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))
    numbers = [as_number(value) for value in observations if not isinstance(value, str)]
    if fn == "sum":
        return sum(numbers)
    if not numbers:
        return None
    if fn == "average":
        return sum(numbers) / len(numbers)
    if fn == "min":
        return min(numbers)
    if fn == "max":
        return max(numbers)
    raise ValueError(f"unknown fold {fn!r}")


_NUMBERS = frozenset([bool, int, float])
_BOOLS = frozenset([bool])
_INTS = frozenset([int])
