"""The statistics against published reference values, and their properties (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.significance import (
    NOT_SIGNIFICANT,
    SIGNIFICANT,
    TOO_FEW,
    fisher_exact,
    holm,
    paired_t_test,
    verdict,
    welch_p_value,
)
from domain.statistics import (
    bootstrap_percentiles,
    mean_sd,
    newcombe,
    t_interval,
    welch_df,
    welch_interval,
    wilson,
)


def _close(interval: tuple[float, float] | None, expected: tuple[float, float], places: int = 4):
    assert interval is not None
    assert (round(interval[0], places), round(interval[1], places)) == expected


def test_wilson_matches_newcombe_1998_single_proportion_example() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263.
    _close(wilson(81, 263), (0.2553, 0.3662))


@pytest.mark.parametrize(
    ("a", "n_a", "b", "n_b", "expected"),
    [
        # Newcombe (1998), "Interval estimation for the difference between independent
        # proportions", Table II, method 10 (hybrid score), examples (a), (b), (c), (h).
        (56, 70, 48, 80, (0.0524, 0.3339)),
        (9, 10, 3, 10, (0.1705, 0.8090)),
        (6, 7, 2, 7, (0.0582, 0.8062)),
        (10, 10, 0, 20, (0.6791, 1.0000)),
    ],
)
def test_newcombe_matches_the_published_examples(
    a: int, n_a: int, b: int, n_b: int, expected: tuple[float, float]
) -> None:
    _close(newcombe(a, n_a, b, n_b), expected)


def test_fisher_exact_on_the_tea_tasting_table() -> None:
    # Fisher's lady tasting tea: [[3, 1], [1, 3]], two-sided p = 34/70.
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857142857, abs=1e-9)

    # [[18, 2], [4, 16]]: the sum of the hypergeometric tables no likelier than it, by hand.
    def table(a: int) -> float:
        return math.comb(20, a) * math.comb(20, 22 - a) / math.comb(40, 22)

    observed = table(18)
    by_hand = sum(table(a) for a in range(2, 21) if table(a) <= observed * (1 + 1e-7))
    assert fisher_exact(18, 20, 4, 20) == pytest.approx(by_hand, rel=1e-9)
    assert fisher_exact(18, 20, 4, 20) == pytest.approx(1.66438e-05, rel=1e-4)


def test_welch_matches_the_textbook_example() -> None:
    # Welch's t-test, Wikipedia's first worked example: t = -2.46, df = 24.99, p = 0.021.
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    (m1, s1), (m2, s2) = mean_sd(a1), mean_sd(a2)
    assert welch_df(s1, 15, s2, 15) == pytest.approx(24.99, abs=0.01)
    assert welch_p_value(m1, s1, 15, m2, s2, 15) == pytest.approx(0.021378, abs=1e-6)
    _close(welch_interval(m1, s1, 15, m2, s2, 15), (-3.9841, -0.3492))


def test_t_interval_of_a_known_sample() -> None:
    # mean 5, sd 1, n 25: t(0.975, 24) = 2.0639 -> 5 ± 0.4128
    _close(t_interval(5.0, 1.0, 25), (4.5872, 5.4128))
    assert t_interval(5.0, 1.0, 1) is None


def test_bootstrap_is_reproducible_and_brackets_the_median() -> None:
    values = [float(v) for v in range(50)]
    first = bootstrap_percentiles(values, [50])
    assert first == bootstrap_percentiles(values, [50])
    assert first is not None
    low, high = first[50][0.95]
    assert low < 24.5 < high
    assert first[50][0.99][0] <= low and high <= first[50][0.99][1]
    assert bootstrap_percentiles([1.0], [50]) is None


def test_holm_steps_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == [
        pytest.approx(0.03),
        pytest.approx(0.06),
        pytest.approx(0.06),
        None,
        pytest.approx(0.02),
    ]


def test_verdicts() -> None:
    assert verdict(0.049) == SIGNIFICANT
    assert verdict(0.05) == NOT_SIGNIFICANT
    assert verdict(0.05, confidence=0.9) == SIGNIFICANT
    assert verdict(None) == TOO_FEW


def test_paired_t_test() -> None:
    result = paired_t_test([0.1, 0.2, 0.3, 0.2])
    assert result.pairs == 4 and result.mean_delta == pytest.approx(0.2)
    assert result.p_value is not None and result.p_value < 0.05
    assert paired_t_test([0.2]).p_value is None
    assert paired_t_test([0.2, 0.2]).p_value is None  # no variation to test


counts = st.integers(min_value=1, max_value=400).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(counts)
def test_wilson_contains_the_rate(pair: tuple[int, int]) -> None:
    k, n = pair
    interval = wilson(k, n)
    assert interval is not None
    assert interval[0] - 1e-12 <= k / n <= interval[1] + 1e-12


@given(counts, st.integers(min_value=2, max_value=10))
def test_wilson_narrows_as_n_grows(pair: tuple[int, int], factor: int) -> None:
    k, n = pair
    small, large = wilson(k, n), wilson(k * factor, n * factor)
    assert small is not None and large is not None
    assert large[1] - large[0] <= small[1] - small[0] + 1e-12


@given(counts, counts)
def test_newcombe_contains_the_difference(a: tuple[int, int], b: tuple[int, int]) -> None:
    interval = newcombe(a[0], a[1], b[0], b[1])
    assert interval is not None
    assert interval[0] - 1e-12 <= a[0] / a[1] - b[0] / b[1] <= interval[1] + 1e-12


@given(
    st.floats(min_value=-1e3, max_value=1e3),
    st.floats(min_value=0.01, max_value=1e3),
    st.integers(min_value=2, max_value=500),
)
def test_t_interval_contains_the_mean_and_narrows(mean: float, sd: float, n: int) -> None:
    interval, wider = t_interval(mean, sd, 2 * n), t_interval(mean, sd, n)
    assert interval is not None and wider is not None
    assert interval[0] <= mean <= interval[1]
    assert interval[1] - interval[0] <= wider[1] - wider[0]


def test_welch_without_variance_is_exact() -> None:
    assert welch_p_value(3.0, 0.0, 5, 3.0, 0.0, 5) == 1.0
    assert welch_p_value(4.0, 0.0, 5, 3.0, 0.0, 5) == 0.0
    assert welch_interval(4.0, 0.0, 5, 3.0, 0.0, 5) == (1.0, 1.0)
    assert welch_p_value(4.0, 0.0, 1, 3.0, 0.0, 5) is None  # too few runs


def test_bootstrap_does_not_depend_on_the_order_of_the_runs() -> None:
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    assert bootstrap_percentiles(values, [50]) == bootstrap_percentiles(sorted(values), [50])


def test_large_groups_get_the_bootstrap_exactly_and_it_agrees_with_resampling() -> None:
    """Above EXACT_BOOTSTRAP_ABOVE values the bootstrap distribution of a percentile is
    computed (binomial counts of order statistics) instead of sampled: the same interval, to
    within one rank, at a fraction of the cost."""
    import random

    from domain import statistics as st

    rng = random.Random(5)
    ordered = tuple(sorted(rng.lognormvariate(0, 1) for _ in range(st.EXACT_BOOTSTRAP_ABOVE + 1)))
    exact = st._exact_bootstrap(ordered, (50, 90, 99), st.CONFIDENCES)
    sampled = st._bootstrap(ordered, (50, 90, 99), st.CONFIDENCES)
    for percentile in (50, 90, 99):
        for confidence in st.CONFIDENCES:
            for got, want in zip(
                exact[percentile][confidence], sampled[percentile][confidence], strict=True
            ):
                rank_got, rank_want = (
                    ordered.index(got),
                    ordered.index(min(ordered, key=lambda x: abs(x - want))),
                )
                assert abs(rank_got - rank_want) <= 2, (percentile, confidence)
    assert st.bootstrap_percentiles(list(ordered), (50,)) == {50: exact[50]}
