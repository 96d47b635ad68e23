"""Naming rules: a signature's category; a cluster's root-cause area, explanation and fix.

Rules are tried in order and the first that matches names the failure (a run that got a 401
and then looped to max steps is an auth failure: the loop is a consequence). Each rule says
in words when it applies (docs/results.md shows them as a table), which of a run's errors
show it best, and which texts (`explanations`) describe its clusters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from domain.clustering.explanations import (
    Area,
    ClusterFacts,
    explain_auth,
    explain_budget,
    explain_docs_page,
    explain_endpoint,
    explain_gave_up,
    explain_invalid,
    explain_max_steps,
    explain_rate,
    explain_runner,
    explain_server,
    explain_timeout,
    explain_tool,
    explain_unfinished,
    fix_auth,
    fix_budget,
    fix_docs_page,
    fix_endpoint,
    fix_gave_up,
    fix_invalid,
    fix_max_steps,
    fix_rate,
    fix_runner,
    fix_server,
    fix_timeout,
    fix_tool,
    fix_unfinished,
)
from domain.clustering.normalize import http_statuses_in
from domain.clustering.signatures import Signature, ToolError

_AUTH_WORDS = re.compile(
    r"unauthori[sz]ed|forbidden|authenticat|invalid (?:api[ _-]?)?(?:key|token)"
    r"|(?:missing|expired|revoked) (?:api[ _-]?)?(?:key|token)|access denied|credentials",
    re.IGNORECASE,
)
_RATE_WORDS = re.compile(r"rate[ _-]?limit|too many requests", re.IGNORECASE)
_TIMEOUT_WORDS = re.compile(
    r"\btimed?[\s-]?out\b|\btimeout\b|\bdeadline exceeded\b|\bno response\b", re.IGNORECASE
)
_DOCS_PATH = re.compile(r"(?:^|/)(?:docs?|guides?|reference|tutorials?)(?:/|$)|\.mdx?$", re.I)


def _error_text(signature: Signature) -> str:
    # Fingerprints, not raw text: a quoted value ('timeout' as an argument name) is data.
    return "\n".join(e.message for e in signature.errors)


def _has(signature: Signature, *statuses: int) -> bool:
    return any(status in statuses for status in signature.http_statuses)


def _error_has(error: ToolError, *statuses: int) -> bool:
    return any(status in statuses for status in http_statuses_in([error.message]))


def _shows_auth(e: ToolError) -> bool:
    return _error_has(e, 401, 403) or bool(_AUTH_WORDS.search(e.message))


def _shows_rate_limit(e: ToolError) -> bool:
    return _error_has(e, 429) or bool(_RATE_WORDS.search(e.message))


def _shows_timeout(e: ToolError) -> bool:
    return _error_has(e, 408, 504) or bool(_TIMEOUT_WORDS.search(e.message))


def _shows_server_error(e: ToolError) -> bool:
    return any(500 <= status < 600 for status in http_statuses_in([e.message]))


def _shows_missing(e: ToolError) -> bool:
    return _error_has(e, 404, 405, 410)


def _shows_invalid(e: ToolError) -> bool:
    return _error_has(e, 400, 409, 422)


def _is_auth(s: Signature) -> bool:
    return _has(s, 401, 403) or bool(_AUTH_WORDS.search(_error_text(s)))


def _is_rate_limited(s: Signature) -> bool:
    return _has(s, 429) or bool(_RATE_WORDS.search(_error_text(s)))


def _is_timeout(s: Signature) -> bool:
    return (
        s.status == "timed_out"
        or s.termination_reason == "timeout"
        or any("Timeout" in kind for kind in s.error_kinds)
        or _has(s, 408, 504)
    )


def _is_server_error(s: Signature) -> bool:
    return any(500 <= status < 600 for status in s.http_statuses)


def _docs_location(s: Signature) -> bool:
    hosts_and_paths = [url.partition("/") for url in s.urls]
    on_docs_url = any(
        host.startswith(("docs.", "doc.")) or _DOCS_PATH.search("/" + path)
        for host, _, path in hosts_and_paths
    )
    return on_docs_url or any(e.tool is not None and "doc" in e.tool.lower() for e in s.errors)


def _is_missing_docs_page(s: Signature) -> bool:
    return _has(s, 404, 410) and _docs_location(s)


def _is_missing_endpoint(s: Signature) -> bool:
    return _has(s, 404, 405, 410)


def _is_invalid_request(s: Signature) -> bool:
    return _has(s, 400, 409, 422)


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """One naming rule: when it applies (code and words), its area, and its texts."""

    category: str
    area: Area
    when: str
    matches: Callable[[Signature], bool]
    explain: Callable[[ClusterFacts], str]
    fix: Callable[[ClusterFacts, Area], str]
    # Which of a run's errors show this failure best (for evidence); default: any.
    shows: Callable[[ToolError], bool] = lambda error: True
    # Product-side failures whose agents mostly said the docs fall short are docs problems.
    docs_when_docs_gap: bool = False


def area_of(rule: CategoryRule, facts: ClusterFacts) -> Area:
    """The rule's area, or `docs` when it allows and most runs said the docs fall short."""
    if rule.docs_when_docs_gap and facts.docs_gap * 2 > facts.runs:
        return "docs"
    return rule.area


def category_of(signature: Signature) -> CategoryRule:
    """The first rule that matches the signature (the last rule matches everything)."""
    return next(rule for rule in RULES if rule.matches(signature))


def rule_named(category: str) -> CategoryRule:
    return next(rule for rule in RULES if rule.category == category)


def telling_error(signature: Signature, rule: CategoryRule) -> tuple[int | None, str, str] | None:
    """(event, text, fingerprint) of what shows the rule's failure best in one run: the last
    error of the rule's kind (the 401 of an auth failure, not the 404 after it), else the last
    error, else the call the run ended waiting on."""
    errors = list(signature.errors)
    showing = [e for e in errors if rule.shows(e)] or errors
    if showing:
        return showing[-1].event, showing[-1].text, showing[-1].message
    if signature.unanswered is not None:
        return signature.unanswered.event, signature.unanswered.text, signature.unanswered.message
    return None


RULES: tuple[CategoryRule, ...] = (
    CategoryRule(
        "Auth failures",
        "product",
        "HTTP 401/403, or an auth error (unauthorized, forbidden, invalid or missing API key)",
        _is_auth,
        explain_auth,
        fix_auth,
        shows=_shows_auth,
        docs_when_docs_gap=True,
    ),
    CategoryRule(
        "Rate limited",
        "infra",
        "HTTP 429 or a rate-limit error",
        _is_rate_limited,
        explain_rate,
        fix_rate,
        shows=_shows_rate_limit,
    ),
    CategoryRule(
        "Timeouts",
        "infra",
        "status timed_out, termination timeout, a tool call that timed out, HTTP 408/504",
        _is_timeout,
        explain_timeout,
        fix_timeout,
        shows=_shows_timeout,
    ),
    CategoryRule(
        "Server errors",
        "infra",
        "HTTP 5xx",
        _is_server_error,
        explain_server,
        fix_server,
        shows=_shows_server_error,
    ),
    CategoryRule(
        "Missing docs pages",
        "docs",
        "HTTP 404/410 on a docs URL (docs. host, /docs/ or /guides/ path, .md) or from a docs tool",
        _is_missing_docs_page,
        explain_docs_page,
        fix_docs_page,
        shows=_shows_missing,
    ),
    CategoryRule(
        "Missing endpoints",
        "product",
        "HTTP 404/405/410 anywhere else",
        _is_missing_endpoint,
        explain_endpoint,
        fix_endpoint,
        shows=_shows_missing,
        docs_when_docs_gap=True,
    ),
    CategoryRule(
        "Agent looped to max steps",
        "agent",
        "termination max_steps",
        lambda s: s.termination_reason == "max_steps",
        explain_max_steps,
        fix_max_steps,
    ),
    CategoryRule(
        "Budget exceeded",
        "agent",
        "termination budget_exceeded",
        lambda s: s.termination_reason == "budget_exceeded",
        explain_budget,
        fix_budget,
    ),
    CategoryRule(
        "Runner errors",
        "infra",
        "status errored: the runner or the model provider failed",
        lambda s: s.status == "errored",
        explain_runner,
        fix_runner,
    ),
    CategoryRule(
        "Invalid requests",
        "product",
        "HTTP 400/409/422",
        _is_invalid_request,
        explain_invalid,
        fix_invalid,
        shows=_shows_invalid,
        docs_when_docs_gap=True,
    ),
    CategoryRule(
        "Agent gave up",
        "agent",
        "no tool error, and the final answer gives up or proposes a workaround",
        lambda s: not s.errors and s.gave_up,
        explain_gave_up,
        fix_gave_up,
    ),
    CategoryRule(
        "Tool errors",
        "agent",
        "any other tool error",
        lambda s: bool(s.errors),
        explain_tool,
        fix_tool,
        docs_when_docs_gap=True,
    ),
    CategoryRule(
        "Task not accomplished",
        "agent",
        "anything else: no error, but the task's success criteria did not hold",
        lambda s: True,
        explain_unfinished,
        fix_unfinished,
    ),
)
