"""Message folds (docs/spec.md §4.4) against simple reference definitions."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.signals.folds import fold, is_truthy

numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
observations = st.lists(st.one_of(st.booleans(), numbers), max_size=30)


@given(observations)
def test_count_is_the_number_of_truthy_observations(values: list[bool | int | float]) -> None:
    assert fold("count", values) == len([v for v in values if v])


@given(observations)
def test_sum_counts_true_as_one(values: list[bool | int | float]) -> None:
    assert fold("sum", values) == pytest.approx(sum(float(v) for v in values))


@given(observations)
def test_average_is_the_mean_or_null(values: list[bool | int | float]) -> None:
    expected = statistics.fmean(float(v) for v in values) if values else None
    assert fold("average", values) == (pytest.approx(expected) if values else None)


@given(observations)
def test_min_and_max_or_null(values: list[bool | int | float]) -> None:
    as_numbers = [float(v) for v in values]
    assert fold("min", values) == (min(as_numbers) if values else None)
    assert fold("max", values) == (max(as_numbers) if values else None)


@given(st.lists(st.one_of(st.booleans(), st.sampled_from(["a", "b"]), st.integers(0, 3))))
def test_histogram_counts_every_observation_once(values: list[bool | int | str]) -> None:
    histogram = fold("histogram", values)
    assert sum(histogram.values()) == len(values)
    assert histogram.get("true", 0) == len([v for v in values if v is True])


def test_histogram_keys_booleans_and_numbers_as_json() -> None:
    assert fold("histogram", [True, False, True, 2, "a"]) == {"2": 1, "a": 1, "false": 1, "true": 2}


def test_empty_observations() -> None:
    assert [fold(fn, []) for fn in ("count", "sum", "average", "min", "max", "histogram")] == [
        0,
        0,
        None,
        None,
        None,
        {},
    ]


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (True, True),
        (False, False),
        (0, False),
        (0.0, False),
        (3, True),
        (-1.5, True),
        ("", False),
        ("a", True),
        ({}, False),
        ({"a": 1}, True),
        (None, False),
    ],
)
def test_truthiness(value: object, truthy: bool) -> None:
    assert is_truthy(value) is truthy
