"""The CI gate: `--fail-on EXPR` conditions over a results document.

A condition names what makes a build fail; the gate fails when any condition holds. Parsing
is strict (a malformed condition is refused before anything is fetched); evaluation is pure,
over the results document as the API returns it (docs/results.md), with its optional
`compare` block and, for `cluster:new`, the failure clusters of the iteration compared with.

Grammar (GRAMMAR below is what users see):

    score OP NUMBER                 the overall score (passed ÷ counted runs)
    env:NAME.score OP NUMBER        an environment's score, by exact name or id
    task:NAME.score OP NUMBER       a task's score, by exact name or id
    signal:ID.FN OP NUMBER          an aggregate's overall value: ID an aggregate id, or a
                                    signal id with FN the aggregate's fn (e.g. auth-errors.rate)
    regression                      a significant drop of the overall, a task's or an
                                    environment's score in the comparison
    cluster:new                     a failure cluster whose cause (key) the compared
                                    iteration did not have
    OP: <  <=  >  >=  ==  !=
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from domain.clustering.changes import cluster_key

GRAMMAR = """\
  score OP NUMBER             e.g. 'score < 0.8' (the overall score, 0..1)
  env:NAME.score OP NUMBER    e.g. 'env:Claude.score < 0.7' (exact name or id)
  task:NAME.score OP NUMBER   e.g. 'task:Sign in.score < 0.5' (exact name or id)
  signal:ID.FN OP NUMBER      e.g. 'signal:auth-errors.rate > 0.2' (aggregate id, or signal
                              id + fn; the overall value)
  regression                  a significant score drop against --compare M (default: the
                              previous iteration)
  cluster:new                 a failure cluster absent from the compared iteration
  OP is one of < <= > >= == !="""

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
Kind = Literal["score", "env", "task", "signal", "regression", "cluster_new"]
_THRESHOLD = re.compile(r"^(?P<subject>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<number>\S+)$")
_SCOPED = re.compile(r"^(?P<scope>env|task):(?P<name>.+)\.score$")
_SIGNAL = re.compile(r"^signal:(?P<ref>\S+)$")
# What a regression counts: drops of scores only. An aggregate's "worse" direction is not
# known (fewer auth errors is better, a higher success rate too), so its significant changes
# are reported in the detail but never fail the gate; guard aggregates with signal:… instead.
SCORE_SECTIONS = (("tasks", "task_id", "task"), ("environments", "environment_id", "environment"))


class GateSyntaxError(ValueError):
    """A --fail-on condition that does not follow the grammar (a usage error)."""


@dataclass(frozen=True, slots=True)
class Condition:
    expr: str
    kind: Kind
    target: str | None = None  # env/task name or id; signal reference
    op: str | None = None
    threshold: float | None = None

    @property
    def needs_comparison(self) -> bool:
        return self.kind in ("regression", "cluster_new")


@dataclass(frozen=True, slots=True)
class Check:
    """One condition evaluated: `holds` means the gate fails on it."""

    expr: str
    holds: bool
    value: Any
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"expr": self.expr, "holds": self.holds, "value": self.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class GateResult:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(check.holds for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": [
                {"expr": c.expr, "value": c.value, "detail": c.detail}
                for c in self.checks
                if c.holds
            ],
            "checked": [c.to_json() for c in self.checks],
        }


def parse_condition(text: str) -> Condition:
    """One --fail-on expression; GateSyntaxError (with the grammar) when it is not one."""
    expr = " ".join(text.split())
    if expr == "regression":
        return Condition(expr, "regression")
    if expr == "cluster:new":
        return Condition(expr, "cluster_new")
    match = _THRESHOLD.match(expr)
    if match is None:
        raise _syntax(text, "expected a comparison like 'score < 0.8', or a keyword")
    subject, op = match["subject"], match["op"]
    try:
        threshold = float(match["number"])
    except ValueError:
        raise _syntax(text, f"{match['number']!r} is not a number") from None
    if not math.isfinite(threshold):
        raise _syntax(text, "the threshold must be a finite number")
    if subject == "score":
        return Condition(expr, "score", None, op, threshold)
    if scoped := _SCOPED.match(subject):
        name = scoped["name"].strip()
        if not name:
            raise _syntax(text, f"{scoped['scope']}: needs a name before .score")
        kind: Kind = "env" if scoped["scope"] == "env" else "task"
        return Condition(expr, kind, name, op, threshold)
    if signal := _SIGNAL.match(subject):
        return Condition(expr, "signal", signal["ref"], op, threshold)
    raise _syntax(text, f"unknown subject {subject!r}")


def parse_conditions(texts: Sequence[str]) -> list[Condition]:
    return [parse_condition(text) for text in texts]


def _syntax(text: str, reason: str) -> GateSyntaxError:
    return GateSyntaxError(f"{text!r}: {reason}. A condition is one of:\n{GRAMMAR}")


def evaluate(
    conditions: Sequence[Condition],
    results: Mapping[str, Any],
    compared_clusters: Sequence[Mapping[str, Any]] | None = None,
) -> GateResult:
    """Every condition over `results` (with `compare` when a comparison was made) and the
    compared iteration's failure clusters (None: there was no iteration to compare with)."""
    return GateResult([_check(c, results, compared_clusters) for c in conditions])


def _check(
    condition: Condition,
    results: Mapping[str, Any],
    compared_clusters: Sequence[Mapping[str, Any]] | None,
) -> Check:
    if condition.kind == "regression":
        return _regression(condition, results.get("compare"), _names(results))
    if condition.kind == "cluster_new":
        return _new_clusters(condition, results, compared_clusters)
    value, where = _value(condition, results)
    return _threshold(condition, value, where)


def _value(condition: Condition, results: Mapping[str, Any]) -> tuple[Any, str]:
    """The value a threshold condition reads, and a phrase naming it (or why it is absent)."""
    summary = results.get("summary", {})
    if condition.kind == "score":
        return summary.get("score"), "overall score"
    if condition.kind in ("env", "task"):
        key, id_key, word = (
            ("environments", "environment_id", "environment")
            if condition.kind == "env"
            else ("tasks", "task_id", "task")
        )
        entries = summary.get(key, [])
        found = [e for e in entries if condition.target in (e.get(id_key), e.get("name"))]
        if len(found) != 1:
            known = ", ".join(str(e.get("name") or e.get(id_key)) for e in entries) or "none"
            problem = "no" if not found else "more than one"
            return None, f"{problem} {word} named {condition.target!r} (known: {known})"
        return found[0].get("score"), f"{word} {found[0].get('name') or found[0][id_key]} score"
    return _aggregate_value(str(condition.target), results.get("aggregates", []))


def _aggregate_value(ref: str, aggregates: Sequence[Mapping[str, Any]]) -> tuple[Any, str]:
    found = [a for a in aggregates if a.get("id") == ref]
    if not found and "." in ref:
        signal_id, fn = ref.rsplit(".", 1)
        found = [
            a
            for a in aggregates
            if signal_id in (a.get("signal_id"), a.get("id")) and a.get("fn") == fn
        ]
    if len(found) != 1:
        known = ", ".join(f"{a.get('id')} ({a.get('signal_id')}.{a.get('fn')})" for a in aggregates)
        problem = "no" if not found else "more than one"
        return None, f"{problem} aggregate matches {ref!r} (aggregates: {known or 'none'})"
    return found[0].get("value"), f"aggregate {found[0].get('id')}"


def _threshold(condition: Condition, value: Any, where: str) -> Check:
    assert condition.op is not None and condition.threshold is not None
    wanted = f"{condition.op} {condition.threshold:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        # A gate must not pass on missing data: no value fails the condition.
        reason = where if value is None and where.startswith(("no ", "more ")) else None
        detail = reason or f"{where} has no numeric value ({value!r}), so it cannot be {wanted}"
        return Check(condition.expr, True, value, f"{detail}; failing safe")
    holds = OPERATORS[condition.op](float(value), condition.threshold)
    return Check(condition.expr, holds, value, f"{where} is {value:.4g} (fails when {wanted})")


def _names(results: Mapping[str, Any]) -> dict[str, str]:
    """Task and environment ids -> names, so details read as the tables do."""
    summary = results.get("summary", {})
    entries = [*summary.get("tasks", []), *summary.get("environments", [])]
    return {
        str(e.get("task_id") or e.get("environment_id")): str(e["name"])
        for e in entries
        if e.get("name")
    }


def _regression(
    condition: Condition, compare: Mapping[str, Any] | None, names: Mapping[str, str]
) -> Check:
    if compare is None:
        return Check(
            condition.expr, False, None, "no earlier iteration to compare with; not judged"
        )
    against = f"iteration {compare.get('iteration')}"
    entries: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(compare.get("score"), Mapping):
        entries.append(("overall score", compare["score"]))
    for section, id_key, word in SCORE_SECTIONS:
        for entry in compare.get(section, []):
            entry_id = str(entry.get(id_key))
            entries.append((f"{word} {names.get(entry_id, entry_id)}", entry))
    judged = [(name, e) for name, e in entries if "verdict" in e]
    if not judged:
        return Check(
            condition.expr,
            False,
            None,
            f"the comparison with {against} carries no significance verdicts (the server "
            "does not compute them), so no regression can be judged",
        )
    drops = [
        f"{name} {_points(e.get('delta'))} (p_adj {_p(e.get('p_adjusted'))})"
        for name, e in judged
        if e.get("verdict") == "significant" and _number(e.get("delta")) < 0
    ]
    too_few = sum(e.get("verdict") == "too few runs" for _, e in judged)
    aggregate_changes = [
        str(a.get("id"))
        for a in compare.get("aggregates", [])
        if a.get("verdict") == "significant" and _number(a.get("delta")) != 0
    ]
    notes = []
    if too_few:
        notes.append(f"{too_few} with too few runs to judge")
    if aggregate_changes:
        notes.append(
            "significant aggregate changes not counted (direction unknown): "
            + ", ".join(aggregate_changes)
        )
    suffix = f"; {'; '.join(notes)}" if notes else ""
    if drops:
        return Check(
            condition.expr,
            True,
            len(drops),
            f"significant drop against {against}: {', '.join(drops)}{suffix}",
        )
    return Check(condition.expr, False, 0, f"no significant score drop against {against}{suffix}")


def _new_clusters(
    condition: Condition,
    results: Mapping[str, Any],
    compared_clusters: Sequence[Mapping[str, Any]] | None,
) -> Check:
    if compared_clusters is None:
        return Check(
            condition.expr, False, None, "no earlier iteration to compare with; not judged"
        )
    # Matched by cause key, stable across iterations (names for clusters recorded before keys).
    before = {cluster_key(c) for c in compared_clusters}
    new = [c for c in results.get("failure_clusters", []) if cluster_key(c) not in before]
    against = f"iteration {results.get('compare', {}).get('iteration', 'compared')}"
    if not new:
        return Check(condition.expr, False, 0, f"no failure cluster new since {against}")
    names = ", ".join(f"{c.get('category')} ({_runs(c)})" for c in new)
    return Check(condition.expr, True, len(new), f"new failure clusters since {against}: {names}")


def _runs(cluster: Mapping[str, Any]) -> str:
    size = cluster.get("size", len(cluster.get("run_ids", [])))
    return f"{size} run" if size == 1 else f"{size} runs"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _points(delta: Any) -> str:
    return "?" if not isinstance(delta, int | float) else f"{float(delta) * 100:+.0f} pts"


def _p(value: Any) -> str:
    return "?" if not isinstance(value, int | float) else f"{float(value):.3g}"
