"""The aggregate functions of docs/spec.md §4.6: hand-computed cases, then properties against
references."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.signals.aggregates import (
    AggregateResult,
    GroupValue,
    RunValues,
    aggregate_values,
    compute_aggregates,
)
from domain.signals.config import Aggregate, Signal, SignalConfig

_EXTRACT: dict[str, dict[str, Any]] = {
    "boolean": {"method": "pattern", "patterns": [{"name": "p", "regex": "x"}]},
    "number": {"method": "stats", "stat": "duration"},
    "category": {"method": "llm", "prompt": "Which kind?"},
}


def make_signal(
    signal_id: str = "s",
    type: str = "number",
    categories: list[str] | None = None,
    histogram: bool = False,
) -> Signal:
    raw: dict[str, Any] = {"id": signal_id, "name": signal_id, "type": type}
    raw["extract"] = _EXTRACT[type]
    if categories is not None:
        raw["category_enums"] = categories
    if histogram:
        raw.update(scope="message", target_role="assistant", fold={"fn": "histogram"})
    return Signal.model_validate(raw)


def make_aggregate(fn: str, signal_id: str = "s", **options: Any) -> Aggregate:
    return Aggregate.model_validate(
        {
            "id": f"{fn.replace('_', '-')}-{signal_id}",
            "signal_id": signal_id,
            "fn": fn,
            "label": fn,
            **options,
        }
    )


def agg(fn: str, values: Sequence[Any], signal: Signal | None = None, **options: Any) -> Any:
    return aggregate_values(make_aggregate(fn, **options), signal or make_signal(), values)


def as_number(value: bool | int | float) -> int | float:
    return int(value) if isinstance(value, bool) else value


# -- hand-computed cases ----------------------------------------------------------------------


def test_count_counts_every_value_of_any_kind() -> None:
    assert agg("count", []) == 0
    assert agg("count", [1, 2.5, True, False, "x", {"a": 1}]) == 6


def test_count_where_keeps_booleans_and_numbers_apart() -> None:
    values = [True, 1, 1.0, False, 0, 2, "1", "a"]
    assert agg("count_where", values, where={"eq": True}) == 1
    assert agg("count_where", values, where={"eq": 1}) == 2  # 1 and 1.0, never True
    assert agg("count_where", values, where={"eq": "1"}) == 1
    assert agg("count_where", values, where={"ne": 1}) == 6
    assert agg("count_where", values, where={"in": ["a", 0, False]}) == 3
    assert agg("count_where", [], where={"eq": True}) == 0


def test_count_where_orders_numbers_with_booleans_as_0_1_and_skips_the_rest() -> None:
    values = [True, False, 1, 0.2, 3, "9", {"a": 9}]
    assert agg("count_where", values, where={"gt": 0.5}) == 3
    assert agg("count_where", values, where={"gte": 1}) == 3
    assert agg("count_where", values, where={"lt": 1}) == 2
    assert agg("count_where", values, where={"lte": 0}) == 1


def test_count_where_compares_histograms_as_whole_objects() -> None:
    signal = make_signal(type="category", categories=["a", "b"], histogram=True)
    histograms = [{"a": 1}, {"a": 2, "b": 1}]
    assert agg("count_where", histograms, signal, where={"ne": "a"}) == 2
    assert agg("count_where", histograms, signal, where={"in": ["a", 1]}) == 0
    assert agg("count_where", histograms, signal, where={"gt": 0}) == 0


def test_count_where_without_a_condition_is_an_error() -> None:
    with pytest.raises(ValueError, match="where"):
        agg("count_where", [1])


def test_rate_is_truthy_over_present() -> None:
    assert agg("rate", []) is None
    assert agg("rate", [True, False, 0, 2, "", "a", {}, {"x": 1}]) == 0.5
    assert agg("rate", [0.0, False]) == 0.0


def test_sum_reads_booleans_as_numbers() -> None:
    assert agg("sum", []) == 0
    assert agg("sum", [1, 2.5, True, False]) == 4.5
    total = agg("sum", [1, 2, 3])
    assert total == 6 and isinstance(total, int)
    assert agg("sum", [True, True]) == 2 and agg("sum", [True, True]) is not True


def test_avg() -> None:
    assert agg("avg", []) is None
    assert agg("avg", [1, 2, True, False]) == 1.0
    assert agg("avg", [0.1, 0.2, 0.3]) == pytest.approx(0.2)


def test_min_and_max_are_numbers() -> None:
    assert agg("min", []) is None and agg("max", []) is None
    assert agg("min", [3, True, -1.5]) == -1.5
    assert agg("max", [3, True, -1.5]) == 3
    assert agg("max", [True, False]) == 1 and type(agg("max", [True, False])) is int
    assert type(agg("min", [True, False])) is int


def test_median_odd_even_and_empty() -> None:
    assert agg("median", []) is None
    assert agg("median", [3, 1, 2]) == 2
    assert agg("median", [4, 1, 3, 2]) == 2.5
    assert agg("median", [7]) == 7
    assert agg("median", [True, False, True]) == 1


def test_mode_breaks_ties_by_json_and_keeps_true_apart_from_1() -> None:
    assert agg("mode", []) is None
    assert agg("mode", ["b", "a", "b"]) == "b"
    assert agg("mode", ["b", "a"]) == "a"
    assert agg("mode", [9, 10]) == 10  # '10' < '9' as strings
    assert agg("mode", [True, 1, 1]) == 1 and agg("mode", [True, 1, 1]) is not True
    assert agg("mode", [True, True, 1]) is True
    assert agg("mode", [True, 1]) == 1 and agg("mode", [True, 1]) is not True  # '1' < 'true'
    assert agg("mode", [{"b": 1, "a": 2}, {"a": 2, "b": 1}, {"c": 1}]) == {"a": 2, "b": 1}


def test_count_by_category_declared_first_then_others_sorted() -> None:
    signal = make_signal(type="category", categories=["x", "y", "z"])
    counts = agg("count_by_category", ["y", "w", "y", "a"], signal)
    assert counts == {"x": 0, "y": 2, "z": 0, "a": 1, "w": 1}
    assert list(counts) == ["x", "y", "z", "a", "w"]
    assert agg("count_by_category", [], signal) == {"x": 0, "y": 0, "z": 0}


def test_count_by_category_of_booleans_numbers_and_histograms() -> None:
    boolean = make_signal(type="boolean")
    assert agg("count_by_category", [True, True], boolean) == {"true": 2, "false": 0}
    assert agg("count_by_category", [], boolean) == {"true": 0, "false": 0}
    assert agg("count_by_category", [1, 2.5, 1, True]) == {"1": 2, "2.5": 1, "true": 1}
    histogram = make_signal(type="category", categories=["a", "b", "d"], histogram=True)
    counts = agg("count_by_category", [{"b": 2, "c": 1}, {"a": 1, "c": 3}], histogram)
    assert counts == {"a": 1, "b": 2, "d": 0, "c": 4}
    assert list(counts) == ["a", "b", "d", "c"]
    flags = make_signal(type="boolean", histogram=True)
    assert agg("count_by_category", [{"true": 2}], flags) == {"true": 2, "false": 0}


def test_avg_by_category_per_category_of_the_by_signal() -> None:
    kind = make_signal("kind", type="category", categories=["q", "p", "s"])
    means = aggregate_values(
        make_aggregate("avg_by_category", by="kind"),
        make_signal(),
        [1.0, 3.0, 5.0, True],
        ["p", "p", "q", "r"],
        kind,
    )
    assert means == {"q": 5.0, "p": 2.0, "s": None, "r": 1.0}
    assert list(means) == ["q", "p", "s", "r"]
    by_kind = make_aggregate("avg_by_category", by="kind")
    empty = aggregate_values(by_kind, make_signal(), [], [], kind)
    assert empty == {"q": None, "p": None, "s": None}
    with pytest.raises(ValueError, match="by"):
        agg("avg_by_category", [1.0], by="kind")


@pytest.mark.parametrize(
    ("values", "p50", "p90", "p99", "mean", "counts", "edges"),
    [  # expectations computed with numpy.percentile / numpy.histogram(bins=4)
        (list(range(1, 11)), 5.5, 9.1, 9.91, 5.5, [3, 2, 2, 3], [1, 3.25, 5.5, 7.75, 10]),
        (
            [20, 7, 0.5, 11, 7, 2],
            7.0,
            15.5,
            19.55,
            95 / 12,
            [2, 2, 1, 1],
            [0.5, 5.375, 10.25, 15.125, 20],
        ),
        ([3, 1], 2.0, 2.8, 2.98, 2.0, [1, 0, 0, 1], [1, 1.5, 2, 2.5, 3]),
    ],
)
def test_distribution_of_numbers_matches_numpy(
    values: list[float],
    p50: float,
    p90: float,
    p99: float,
    mean: float,
    counts: list[int],
    edges: list[float],
) -> None:
    result = agg("distribution", values, bins=4)
    assert (result["p50"], result["p90"], result["p99"]) == (p50, p90, p99)
    assert result["count"] == len(values)
    assert (result["min"], result["max"]) == (min(values), max(values))
    assert result["mean"] == pytest.approx(mean)
    assert [b["count"] for b in result["histogram"]] == counts
    assert [b["lo"] for b in result["histogram"]] + [result["histogram"][-1]["hi"]] == edges


def test_distribution_rounds_exactly_like_numpy() -> None:
    # numpy interpolates from the upper neighbour past the midpoint: 6.058 the naive way.
    assert agg("distribution", [4.7, 1.0, 4.3, 6.1])["p99"] == 6.057999999999999
    # 5.1 sits exactly on the fourth edge although (5.1 - 2.6) / width rounds below 3.
    result = agg("distribution", [7.6, 4.2, 2.6, 5.1, 4.0], bins=6)
    assert [b["count"] for b in result["histogram"]] == [1, 2, 0, 1, 0, 1]
    assert result["histogram"][3]["lo"] == 5.1


def test_distribution_of_numbers_edge_cases() -> None:
    assert agg("distribution", []) is None
    same = agg("distribution", [2, 2, 2])
    assert same["histogram"] == [{"lo": 2, "hi": 2, "count": 3}]
    assert (same["p50"], same["p99"], same["mean"]) == (2.0, 2.0, 2.0)
    default = agg("distribution", [0, 1, 2, 10])
    assert len(default["histogram"]) == 10
    assert default["histogram"][-1] == {"lo": 9.0, "hi": 10, "count": 1}  # closed on the right
    assert agg("distribution", [True, False, False])["mean"] == pytest.approx(1 / 3)


def test_distribution_of_categories_booleans_and_histograms_is_shares() -> None:
    signal = make_signal(type="category", categories=["x", "y", "z"])
    shares = agg("distribution", ["x", "x", "y", "q"], signal)
    assert shares == {"x": 0.5, "y": 0.25, "z": 0.0, "q": 0.25}
    assert agg("distribution", [], signal) is None
    boolean = make_signal(type="boolean")
    assert agg("distribution", [True, True, True, False], boolean) == {"true": 0.75, "false": 0.25}
    assert agg("distribution", [False], boolean) == {"true": 0.0, "false": 1.0}
    histogram = make_signal(type="category", categories=["a", "b"], histogram=True)
    assert agg("distribution", [{"a": 1}, {"a": 1, "c": 2}], histogram) == {
        "a": 0.5,
        "b": 0.0,
        "c": 0.5,
    }
    assert agg("distribution", [{}], histogram) is None  # nothing to share out


# -- grouping ---------------------------------------------------------------------------------


def _config(*aggregates: dict[str, Any]) -> SignalConfig:
    return SignalConfig.model_validate(
        {
            "version": 1,
            "signals": [
                {"id": "ok", "name": "ok", "type": "boolean", "extract": _EXTRACT["boolean"]},
                {"id": "tokens", "name": "tokens", "type": "number", "extract": _EXTRACT["number"]},
                {
                    "id": "kind",
                    "name": "kind",
                    "type": "category",
                    "category_enums": ["a", "b"],
                    "extract": _EXTRACT["category"],
                },
            ],
            "aggregates": [{"label": a["id"], **a} for a in aggregates],
        }
    )


RUNS = [  # deliberately out of task/environment order
    RunValues("t2", "e1", {"ok": None, "tokens": 30}),
    RunValues("t1", "e2", {"ok": False, "tokens": None, "kind": "b"}),
    RunValues("t1", "e1", {"ok": True, "tokens": 10, "kind": "a"}),
    RunValues("t2", "e1", {"ok": True, "tokens": 20, "kind": "a"}),
    RunValues("t1", "e1", {"tokens": 40, "kind": "b"}),
]


def test_compute_aggregates_groups_by_environment_task_and_both() -> None:
    config = _config(
        {"id": "pass-rate", "signal_id": "ok", "fn": "rate"},
        {"id": "mean-tokens", "signal_id": "tokens", "fn": "avg"},
    )
    rate, tokens = compute_aggregates(config, RUNS)
    assert (rate.id, rate.signal_id, rate.fn) == ("pass-rate", "ok", "rate")
    assert rate.label == "pass-rate"
    assert rate.overall == GroupValue(value=2 / 3, n=3, missing=2)
    assert rate.by_environment == {
        "e1": GroupValue(value=1.0, n=2, missing=2),
        "e2": GroupValue(value=0.0, n=1, missing=0),
    }
    assert rate.by_task == {
        "t1": GroupValue(value=0.5, n=2, missing=1),
        "t2": GroupValue(value=1.0, n=1, missing=1),
    }
    assert rate.by_task_environment == {
        "t1": {"e1": GroupValue(1.0, 1, 1), "e2": GroupValue(0.0, 1, 0)},
        "t2": {"e1": GroupValue(1.0, 1, 1)},
    }
    assert list(rate.by_task) == ["t1", "t2"]
    assert list(rate.by_task_environment["t1"]) == ["e1", "e2"]
    assert tokens.overall == GroupValue(value=25.0, n=4, missing=1)
    assert tokens.by_environment["e2"] == GroupValue(value=None, n=0, missing=1)
    assert tokens.by_task_environment["t1"]["e1"] == GroupValue(value=25.0, n=2, missing=0)


def test_avg_by_category_n_counts_runs_with_a_value_even_without_a_category() -> None:
    config = _config(
        {"id": "by-kind", "signal_id": "tokens", "fn": "avg_by_category", "by": "kind"}
    )
    [result] = compute_aggregates(config, RUNS)
    assert result.overall == GroupValue(value={"a": 15.0, "b": 40.0}, n=4, missing=1)
    assert result.by_task["t2"] == GroupValue(value={"a": 20.0, "b": None}, n=2, missing=0)


def test_aggregate_result_to_json_shape() -> None:
    config = _config({"id": "runs", "signal_id": "tokens", "fn": "count"})
    [result] = compute_aggregates(config, RUNS)
    assert isinstance(result, AggregateResult)
    assert result.to_json() == {
        "id": "runs",
        "signal_id": "tokens",
        "fn": "count",
        "label": "runs",
        "value": 4,
        "n": 4,
        "missing": 1,
        "ci": None,
        "ci_method": None,
        "by_environment": {
            "e1": {"value": 4, "n": 4, "missing": 0, "ci": None, "ci_method": None},
            "e2": {"value": 0, "n": 0, "missing": 1, "ci": None, "ci_method": None},
        },
        "by_task": {
            "t1": {"value": 2, "n": 2, "missing": 1, "ci": None, "ci_method": None},
            "t2": {"value": 2, "n": 2, "missing": 0, "ci": None, "ci_method": None},
        },
        "by_task_environment": {
            "t1": {
                "e1": {"value": 2, "n": 2, "missing": 0, "ci": None, "ci_method": None},
                "e2": {"value": 0, "n": 0, "missing": 1, "ci": None, "ci_method": None},
            },
            "t2": {"e1": {"value": 2, "n": 2, "missing": 0, "ci": None, "ci_method": None}},
        },
    }
    json.dumps(result.to_json())  # plain JSON all the way down


def test_compute_aggregates_keeps_config_order_and_handles_no_runs() -> None:
    config = _config(
        {"id": "z-last", "signal_id": "ok", "fn": "count_by_category"},
        {"id": "a-first", "signal_id": "tokens", "fn": "sum"},
    )
    results = compute_aggregates(config, [])
    assert [r.id for r in results] == ["z-last", "a-first"]
    assert results[0].overall == GroupValue(value={"true": 0, "false": 0}, n=0, missing=0)
    assert results[1].overall == GroupValue(value=0, n=0, missing=0)
    assert results[1].by_environment == {} and results[1].by_task_environment == {}


# -- properties against reference definitions -------------------------------------------------

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
number_lists = st.lists(numbers, max_size=40)
nonempty_number_lists = st.lists(numbers, min_size=1, max_size=40)


def reference_percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo)


@given(number_lists)
def test_sum_avg_min_max_median_match_references(values: list[Any]) -> None:
    plain = [as_number(v) for v in values]
    assert agg("sum", values) == pytest.approx(math.fsum(plain), abs=1e-6)
    if not plain:
        assert [agg(fn, values) for fn in ("avg", "min", "max", "median")] == [None] * 4
        return
    assert agg("avg", values) == pytest.approx(statistics.fmean(plain), abs=1e-6)
    assert agg("min", values) == min(plain)
    assert agg("max", values) == max(plain)
    assert agg("median", values) == statistics.median(plain)


@given(nonempty_number_lists, st.integers(1, 25))
def test_distribution_matches_references(values: list[Any], bins: int) -> None:
    plain = [float(as_number(v)) for v in values]
    result = agg("distribution", values, bins=bins)
    assert result["count"] == len(values)
    assert result["mean"] == pytest.approx(statistics.fmean(plain), abs=1e-6)
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        assert result[name] == pytest.approx(reference_percentile(plain, q), abs=1e-6)
        assert result["min"] <= result[name] <= result["max"]
    assert result["p50"] <= result["p90"] <= result["p99"]
    histogram = result["histogram"]
    assert sum(b["count"] for b in histogram) == result["count"]
    assert histogram[0]["lo"] == result["min"] and histogram[-1]["hi"] == result["max"]
    if result["min"] < result["max"]:
        assert len(histogram) == bins
        for i, b in enumerate(histogram):  # every number sits in the bin its edges describe
            last = i == len(histogram) - 1
            inside = [x for x in plain if b["lo"] <= x and (x <= b["hi"] if last else x < b["hi"])]
            assert b["count"] == len(inside)


@given(number_lists, st.data())
def test_results_do_not_depend_on_run_order(values: list[Any], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(values))
    for fn in ("sum", "avg", "median", "mode", "rate", "count_by_category", "distribution"):
        assert agg(fn, shuffled) == agg(fn, values)


@given(number_lists)
def test_rate_matches_reference(values: list[Any]) -> None:
    expected = sum(1 for v in values if v) / len(values) if values else None
    assert agg("rate", values) == expected
    if values:
        assert 0 <= agg("rate", values) <= 1


scalars = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.sampled_from(["a", "b", "1"]),
)


@given(st.lists(scalars, max_size=30))
def test_mode_matches_reference(values: list[Any]) -> None:
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    if not counts:
        assert agg("mode", values) is None
        return
    best = min(counts, key=lambda key: (-counts[key], key))
    mode = agg("mode", values)
    assert json.dumps(mode) == best
    assert counts[json.dumps(mode)] == max(counts.values())


@given(
    st.lists(scalars, max_size=30), st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(-3, 3)
)
def test_count_where_ordering_matches_reference(values: list[Any], op: str, bound: int) -> None:
    compare = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}
    expected = sum(
        1 for v in values if not isinstance(v, str) and compare[op](float(v), float(bound))
    )
    assert agg("count_where", values, where={op: bound}) == expected


@given(st.lists(scalars, max_size=30), scalars)
def test_count_where_eq_and_ne_partition_the_values(values: list[Any], operand: Any) -> None:
    equal = agg("count_where", values, where={"eq": operand})
    assert equal + agg("count_where", values, where={"ne": operand}) == len(values)
    assert agg("count_where", values, where={"in": [operand]}) == equal
    expected = sum(
        1
        for v in values
        if isinstance(v, bool) == isinstance(operand, bool)
        and isinstance(v, str) == isinstance(operand, str)
        and v == operand
    )
    assert equal == expected


categories = st.sampled_from(["x", "y", "z", "w"])


@given(st.lists(categories, max_size=30))
def test_count_by_category_and_shares_add_up(values: list[str]) -> None:
    signal = make_signal(type="category", categories=["z", "x"])
    counts = agg("count_by_category", values, signal)
    assert sum(counts.values()) == len(values)
    assert list(counts)[:2] == ["z", "x"] and list(counts)[2:] == sorted(list(counts)[2:])
    assert counts == {"z": 0, "x": 0, **Counter(values)}
    shares = agg("distribution", values, signal)
    if values:
        assert math.fsum(shares.values()) == pytest.approx(1.0)
        assert shares == {key: count / len(values) for key, count in counts.items()}
    else:
        assert shares is None


@given(st.lists(st.dictionaries(categories, st.integers(0, 5), max_size=4), max_size=10))
def test_histogram_values_add_their_counts(values: list[dict[str, int]]) -> None:
    signal = make_signal(type="category", categories=["x", "y"], histogram=True)
    counts = agg("count_by_category", values, signal)
    total = sum(sum(v.values()) for v in values)
    assert sum(counts.values()) == total
    assert {k: c for k, c in counts.items() if c} == {
        k: c for k, c in sum((Counter(v) for v in values), Counter()).items() if c
    }
    shares = agg("distribution", values, signal)
    assert shares is None if total == 0 else math.fsum(shares.values()) == pytest.approx(1.0)


runs = st.lists(
    st.builds(
        lambda task, env, value: RunValues(task, env, {} if value is None else {"tokens": value}),
        st.sampled_from(["t1", "t2", "t3"]),
        st.sampled_from(["e2", "e1"]),
        st.one_of(st.none(), st.integers(0, 100)),
    ),
    max_size=30,
)


@given(runs)
def test_groups_partition_the_runs(sample: list[RunValues]) -> None:
    config = _config(
        {"id": "runs", "signal_id": "tokens", "fn": "count"},
        {"id": "total", "signal_id": "tokens", "fn": "sum"},
    )
    count, total = compute_aggregates(config, sample)
    present = [r for r in sample if "tokens" in r.values]
    assert count.overall == GroupValue(len(present), len(present), len(sample) - len(present))
    assert total.overall.value == sum(r.values["tokens"] for r in present)
    for result in (count, total):
        cells = [g for envs in result.by_task_environment.values() for g in envs.values()]
        for groups in (list(result.by_environment.values()), list(result.by_task.values()), cells):
            assert sum(g.n for g in groups) == result.overall.n
            assert sum(g.missing for g in groups) == result.overall.missing
        assert list(result.by_environment) == sorted(result.by_environment)
        assert list(result.by_task) == sorted(result.by_task)
    assert sum(g.value for g in total.by_task.values()) == total.overall.value


def test_intervals_by_function() -> None:
    """Rates get Wilson, means Student-t, medians and numeric distributions the bootstrap,
    counts none; in every group (docs/spec.md §4.6, docs/results.md)."""
    config = _config(
        {"id": "pass-rate", "signal_id": "ok", "fn": "rate"},
        {"id": "mean-tokens", "signal_id": "tokens", "fn": "avg"},
        {"id": "median-tokens", "signal_id": "tokens", "fn": "median"},
        {"id": "spread", "signal_id": "tokens", "fn": "distribution"},
        {"id": "total", "signal_id": "tokens", "fn": "sum"},
    )
    rate, mean, median, spread, total = (r.to_json() for r in compute_aggregates(config, RUNS))
    assert rate["ci_method"] == "wilson"
    assert rate["ci"] == [pytest.approx(0.2077, abs=1e-4), pytest.approx(0.9385, abs=1e-4)]
    assert rate["by_environment"]["e1"]["ci_method"] == "wilson"
    assert mean["ci_method"] == "t" and mean["ci"][0] < mean["value"] < mean["ci"][1]
    assert median["ci_method"] == "bootstrap"
    assert median["ci"][0] <= median["value"] <= median["ci"][1]
    assert spread["ci_method"] == "bootstrap" and set(spread["ci"]) == {"p50", "p90", "p99"}
    assert (total["ci"], total["ci_method"]) == (None, None)
