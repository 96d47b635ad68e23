"""Repeat stability: with repeats, how reliably each task × environment passes.

Per pair: pass@k (at least one of k repeats passes) and pass^k (all k pass), both as the
unbiased estimators over the n recorded repeats with c passes (Chen et al. 2021, "Evaluating
Large Language Models Trained on Code"; pass^k as in τ-bench):

    pass@k = 1 − C(n−c, k) / C(n, k)        pass^k = C(c, k) / C(n, k)

A pair is flaky when some but not all of its repeats pass. Per environment, a "runs needed"
hint: how many runs per environment a two-proportion test would need to tell its score from
the best one's at 80% power, two-sided α 0.05 (normal approximation). Pure: results call it
once per iteration."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

POWER = 0.8
ALPHA = 0.05
# k reported per pair: every k up to this many repeats, then only k = n (the whole set).
ALL_K_UP_TO = 10


@dataclass(frozen=True, slots=True)
class Outcome:
    """One counted (not cancelled) run: its task, its environment, whether it passed."""

    task_id: str
    environment_id: str
    passed: bool


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that at least one of k repeats drawn from n (c of them passing) passes."""
    _check(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The chance that all k repeats drawn from n (c of them passing) pass."""
    _check(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")


def reported_ks(n: int) -> list[int]:
    """k = 1..n for up to ALL_K_UP_TO repeats; beyond that 1..ALL_K_UP_TO and n itself."""
    return list(range(1, min(n, ALL_K_UP_TO) + 1)) + ([n] if n > ALL_K_UP_TO else [])


def runs_needed(p1: float, p2: float, power: float = POWER, alpha: float = ALPHA) -> int | None:
    """Runs per group for a two-sided two-proportion z-test to detect p1 ≠ p2 (None when
    they are equal: no number of runs tells equal rates apart)."""
    if p1 == p2:
        return None
    normal = NormalDist()
    z_alpha = normal.inv_cdf(1 - alpha / 2)
    z_beta = normal.inv_cdf(power)
    mean = (p1 + p2) / 2
    spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil(spread**2 / (p1 - p2) ** 2)


def _ks_json(values: Mapping[int, float]) -> dict[str, float]:
    # JSON object keys are strings; k stays readable ("1", "2", …).
    return {str(k): value for k, value in values.items()}


def repeat_stability(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """`summary["stability"]`: always present; `repeats` is the most counted runs of any
    pair, and with fewer than 2 there are no pairs to judge (`pairs` empty, shares null)."""
    counts: dict[tuple[str, str], list[int]] = {}  # pair -> [runs, passed]
    for outcome in outcomes:
        tally = counts.setdefault((outcome.task_id, outcome.environment_id), [0, 0])
        tally[0] += 1
        tally[1] += outcome.passed
    repeats = max((n for n, _ in counts.values()), default=0)
    pairs: list[dict[str, Any]] = []
    if repeats >= 2:
        for (task, env), (n, c) in counts.items():
            ks = reported_ks(n)
            pairs.append(
                {
                    "task_id": task,
                    "environment_id": env,
                    "runs": n,
                    "passed": c,
                    "pass_at_k": _ks_json({k: pass_at_k(n, c, k) for k in ks}),
                    "pass_hat_k": _ks_json({k: pass_hat_k(n, c, k) for k in ks}),
                    "flaky": 0 < c < n,
                }
            )
    judged = [p for p in pairs if p["runs"] >= 2]
    flaky = sum(p["flaky"] for p in judged)
    return {
        "repeats": repeats,
        "k": reported_ks(repeats) if repeats >= 2 else [],
        "pairs": pairs,
        "flaky_pairs": flaky,
        "flaky_share": flaky / len(judged) if judged else None,
        "pass_at_k": _mean_by_k(pairs, "pass_at_k"),
        "pass_hat_k": _mean_by_k(pairs, "pass_hat_k"),
        "power": POWER,
        "alpha": ALPHA,
        "environments": _by_environment(counts, pairs),
    }


def _mean_by_k(pairs: list[dict[str, Any]], key: str) -> dict[str, float]:
    """The mean over pairs that have k repeats, for each k some pair reports."""
    ks = sorted({int(k) for pair in pairs for k in pair[key]})
    means: dict[int, float] = {}
    for k in ks:
        values = [pair[key][str(k)] for pair in pairs if str(k) in pair[key]]
        means[k] = sum(values) / len(values)
    return _ks_json(means)


def _by_environment(
    counts: Mapping[tuple[str, str], list[int]], pairs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    envs: dict[str, list[int]] = {}  # env -> [runs, passed, tasks]
    for (_, env), (n, c) in counts.items():
        tally = envs.setdefault(env, [0, 0, 0])
        tally[0] += n
        tally[1] += c
        tally[2] += 1
    scores = {env: c / n for env, (n, c, _) in envs.items() if n}
    best = max(scores.values(), default=None)
    result: list[dict[str, Any]] = []
    for env, (n, _, tasks) in envs.items():
        score = scores.get(env)
        needed = None if best is None or score is None else runs_needed(score, best)
        mine = [p for p in pairs if p["environment_id"] == env]
        result.append(
            {
                "environment_id": env,
                "pairs": len(mine),
                "flaky_pairs": sum(p["flaky"] for p in mine),
                "pass_at_k": _mean_by_k(mine, "pass_at_k"),
                "pass_hat_k": _mean_by_k(mine, "pass_hat_k"),
                "runs": n,
                "score": score,
                "delta_to_best": None if best is None or score is None else score - best,
                "runs_needed": needed,
                # Runs are spread over the environment's tasks: repeats = runs ÷ tasks.
                "repeats_needed": None if needed is None else math.ceil(needed / tasks),
            }
        )
    return result
