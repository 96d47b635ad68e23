"""Intervals (docs/results.md): how sure a rate, a mean or a median is, and how sure a difference
between two of them is. Pure and deterministic: the bootstrap draws from a fixed seed, so the
same figures always give the same interval. Tests of significance are in domain/significance.py.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Interval = tuple[float, float]


def scipy_stats() -> Any:
    """scipy's distributions, imported when first needed: the CLI imports this module, and
    importing scipy would cost every `tpc` command about a second."""
    from scipy import stats

    return stats


# The confidences a reader may ask for; results store an interval for each (read = lookup).
CONFIDENCES: tuple[float, ...] = (0.9, 0.95, 0.99)
DEFAULT_CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20_260_413  # fixed: the same values always give the same interval
# Resampled values held in memory at once (the resamples are drawn in chunks of this size).
_BOOTSTRAP_CHUNK = 2_000_000
# Above this many values a percentile's bootstrap distribution is computed exactly instead of
# sampled: 10,000 resamples of n values cost O(10,000·n) (seconds at 10,000 runs, inside the
# views' transaction), the exact distribution O(n).
EXACT_BOOTSTRAP_ABOVE = 200


def confidence_key(confidence: float) -> str:
    """How a confidence is named in stored documents: '0.9', '0.95', '0.99'."""
    return f"{confidence:g}"


# Remembered: a distribution's quantile costs scipy ~0.1 ms, and an iteration's results ask for
# the same few thousands of times (every rate's interval, at every confidence).
@functools.lru_cache(maxsize=64)
def _z(confidence: float) -> float:
    return float(scipy_stats().norm.ppf(1 - (1 - confidence) / 2))


@functools.lru_cache(maxsize=4096)
def _t(confidence: float, df: float) -> float:
    return float(scipy_stats().t.ppf(1 - (1 - confidence) / 2, df))


def wilson(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval | None:
    """Wilson score interval for a proportion; None without observations."""
    if n <= 0:
        return None
    z = _z(confidence)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def t_interval(
    mean: float, sd: float, n: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval | None:
    """Student-t interval for a mean; None with fewer than two values."""
    if n < 2:
        return None
    half = _t(confidence, n - 1) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def bootstrap_percentiles(
    values: Sequence[float],
    percentiles: Sequence[float],
    confidences: Sequence[float] = CONFIDENCES,
) -> dict[float, dict[float, Interval]] | None:
    """Bootstrap percentile intervals of percentiles (50 = the median) of the values:
    percentile -> confidence -> interval, from one set of 10,000 seeded resamples.
    None with fewer than two values. The values are sorted first, so the order of the runs
    cannot change the answer (and equal groups are computed once)."""
    if len(values) < 2:
        return None
    ordered = tuple(sorted(values))
    if len(ordered) > EXACT_BOOTSTRAP_ABOVE:
        return _exact_bootstrap(ordered, tuple(percentiles), tuple(confidences))
    return _bootstrap(ordered, tuple(percentiles), tuple(confidences))


def _exact_bootstrap(
    ordered: tuple[float, ...], percentiles: tuple[float, ...], confidences: tuple[float, ...]
) -> dict[float, dict[float, Interval]]:
    """The bootstrap percentile interval in the limit of infinitely many resamples. A
    resample's percentile is (to within one rank, at this size) its k-th smallest value, and
    that is at most x_(j) exactly when at least k of its n draws are at most x_(j): a
    Binomial(n, j/n) count. So its distribution is known without drawing anything."""
    data = np.asarray(ordered, dtype=float)
    n = len(data)
    ranks = np.arange(1, n + 1)
    answer: dict[float, dict[float, Interval]] = {}
    for percentile in percentiles:
        k = math.floor((n - 1) * percentile / 100) + 1  # numpy's lower neighbour, 1-based
        below = scipy_stats().binom.sf(k - 1, n, ranks / n)  # P(k-th smallest <= x_(j))
        answer[percentile] = {}
        for confidence in confidences:
            alpha = 1 - confidence
            low = int(np.searchsorted(below, alpha / 2))
            high = int(np.searchsorted(below, 1 - alpha / 2))
            answer[percentile][confidence] = (
                float(data[min(low, n - 1)]),
                float(data[min(high, n - 1)]),
            )
    return answer


@functools.lru_cache(maxsize=256)
def _bootstrap(
    ordered: tuple[float, ...], percentiles: tuple[float, ...], confidences: tuple[float, ...]
) -> dict[float, dict[float, Interval]]:
    data = np.asarray(ordered, dtype=float)
    n = len(data)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    chunk = max(1, _BOOTSTRAP_CHUNK // n)
    estimates: list[np.ndarray] = []
    done = 0
    while done < BOOTSTRAP_RESAMPLES:
        size = min(chunk, BOOTSTRAP_RESAMPLES - done)
        resamples = data[rng.integers(0, n, size=(size, n))]
        estimates.append(np.percentile(resamples, list(percentiles), axis=1))
        done += size
    stacked = np.concatenate(estimates, axis=1)  # percentile x resample
    answer: dict[float, dict[float, Interval]] = {}
    for row, percentile in zip(stacked, percentiles, strict=True):
        answer[percentile] = {}
        for confidence in confidences:
            alpha = 1 - confidence
            low, high = np.percentile(row, [100 * alpha / 2, 100 * (1 - alpha / 2)])
            answer[percentile][confidence] = (float(low), float(high))
    return answer


def bootstrap_median_difference(
    values: Sequence[float], baseline: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> Interval | None:
    """Bootstrap percentile interval of median(values) - median(baseline), each side resampled
    on its own; None when either side has fewer than two values. Sorted first (run order
    cannot change the answer) and remembered: results are read far more often than made."""
    if len(values) < 2 or len(baseline) < 2:
        return None
    return _median_difference(tuple(sorted(values)), tuple(sorted(baseline)), confidence)


@functools.lru_cache(maxsize=256)
def _median_difference(
    ordered: tuple[float, ...], baseline: tuple[float, ...], confidence: float
) -> Interval:
    a, b = np.asarray(ordered, dtype=float), np.asarray(baseline, dtype=float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    chunk = max(1, _BOOTSTRAP_CHUNK // max(len(a), len(b)))
    differences: list[np.ndarray] = []
    done = 0
    while done < BOOTSTRAP_RESAMPLES:
        size = min(chunk, BOOTSTRAP_RESAMPLES - done)
        med_a = np.median(a[rng.integers(0, len(a), size=(size, len(a)))], axis=1)
        med_b = np.median(b[rng.integers(0, len(b), size=(size, len(b)))], axis=1)
        differences.append(med_a - med_b)
        done += size
    alpha = 1 - confidence
    low, high = np.percentile(np.concatenate(differences), [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(low), float(high))


def newcombe(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval | None:
    """Newcombe's hybrid score interval (method 10) for p_a - p_b, from each side's Wilson
    interval; None when a side has no observations."""
    wa, wb = wilson(successes_a, n_a, confidence), wilson(successes_b, n_b, confidence)
    if wa is None or wb is None:
        return None
    pa, pb = successes_a / n_a, successes_b / n_b
    (la, ua), (lb, ub) = wa, wb
    delta = pa - pb
    low = delta - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = delta + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return (low, high)


def welch_df(sd_a: float, n_a: int, sd_b: float, n_b: int) -> float | None:
    """Welch-Satterthwaite degrees of freedom; None when both variances are zero."""
    va, vb = sd_a * sd_a / n_a, sd_b * sd_b / n_b
    if va + vb == 0:
        return None
    return (va + vb) ** 2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1))


def welch_interval(
    mean_a: float,
    sd_a: float,
    n_a: int,
    mean_b: float,
    sd_b: float,
    n_b: int,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Interval | None:
    """Welch interval for mean_a - mean_b; None with fewer than two values a side. Without
    any variance the difference is exact: [delta, delta]."""
    if n_a < 2 or n_b < 2:
        return None
    df = welch_df(sd_a, n_a, sd_b, n_b)
    if df is None:
        return (mean_a - mean_b, mean_a - mean_b)
    half = _t(confidence, df) * math.sqrt(sd_a * sd_a / n_a + sd_b * sd_b / n_b)
    delta = mean_a - mean_b
    return (delta - half, delta + half)


def stored_intervals(
    interval_at: Mapping[float, Interval | None],
) -> dict[str, list[float]] | None:
    """Intervals per confidence as stored in results: {'0.95': [low, high], ...}."""
    if all(interval is None for interval in interval_at.values()):
        return None
    return {
        confidence_key(confidence): [interval[0], interval[1]]
        for confidence, interval in interval_at.items()
        if interval is not None
    }
