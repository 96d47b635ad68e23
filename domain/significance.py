"""Tests of significance (docs/results.md): is a difference more than noise? Two-sided Fisher
exact for rates, Welch's t-test for means, a paired t-test over shared tasks, and Holm's
correction for many comparisons at once. Pure: figures in, p-values out."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from domain.statistics import (
    DEFAULT_CONFIDENCE,
    Interval,
    mean_sd,
    scipy_stats,
    t_interval,
    welch_df,
)

Verdict = Literal["significant", "not significant", "too few runs"]
SIGNIFICANT: Verdict = "significant"
NOT_SIGNIFICANT: Verdict = "not significant"
TOO_FEW: Verdict = "too few runs"
# A side needs at least this many runs with a value to be tested at all.
MIN_RUNS = 2


# Every read of an iteration's results tests the same few tables again, and scipy takes
# ≈ 0.2 ms a table: remembered, they cost a dictionary lookup.
@functools.lru_cache(maxsize=4096)
def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided Fisher exact p-value of the 2x2 table [[a, n_a - a], [b, n_b - b]]."""
    table = [[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]]
    return float(scipy_stats().fisher_exact(table, alternative="two-sided").pvalue)


def welch_p_value(
    mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int
) -> float | None:
    """Welch's two-sided t-test p-value; None with fewer than two values a side. Without any
    variance on either side the difference is exact: 1.0 when the means are equal, else 0.0."""
    if n_a < MIN_RUNS or n_b < MIN_RUNS:
        return None
    df = welch_df(sd_a, n_a, sd_b, n_b)
    if df is None:
        return 1.0 if mean_a == mean_b else 0.0
    t = (mean_a - mean_b) / math.sqrt(sd_a * sd_a / n_a + sd_b * sd_b / n_b)
    return float(2 * scipy_stats().t.sf(abs(t), df))


@dataclass(frozen=True, slots=True)
class PairedTest:
    """A paired t-test over the per-task differences."""

    pairs: int
    mean_delta: float | None
    ci: Interval | None
    p_value: float | None


def paired_t_test(
    differences: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> PairedTest:
    """Paired t-test on the differences (one per shared task): is their mean zero?
    p_value None with fewer than two pairs or when every difference is the same."""
    k = len(differences)
    if k == 0:
        return PairedTest(0, None, None, None)
    mean, sd = mean_sd(differences)
    if k < MIN_RUNS or sd == 0:
        return PairedTest(k, mean, None, None)
    t = mean / (sd / math.sqrt(k))
    p = float(2 * scipy_stats().t.sf(abs(t), k - 1))
    return PairedTest(k, mean, t_interval(mean, sd, k, confidence), p)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def verdict(p_adjusted: float | None, confidence: float = DEFAULT_CONFIDENCE) -> Verdict:
    """`significant` when the adjusted p-value is below alpha = 1 - confidence."""
    if p_adjusted is None:
        return TOO_FEW
    return SIGNIFICANT if p_adjusted < round(1 - confidence, 12) else NOT_SIGNIFICANT
