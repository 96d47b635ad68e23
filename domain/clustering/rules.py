"""Cause rules: each failing run's decisive root cause, the place it happened, and the texts
that describe a cluster of such runs.

Evidence is read in order of strength: HTTP status codes first, then exception types, then the
words of the error. Words inside URLs, paths and ids are data, never evidence: a 404 on
`/guides/rate-limits` is a missing page, not rate limiting. A run's decisive cause is, in turn:

1. the runner's or provider's failure, when the run errored;
2. the call it was still waiting on when the time limit ended it;
3. the strongest cause among its last tool errors (`ERROR_CAUSES` order: a 401 followed by
   404s while the agent guessed around it is an authentication failure);
4. how it ended without an error: re-reading one docs page to the step limit, the step, time
   or budget limit, giving up, or an answer that missed the success criteria.

Each cause has a stable key (`auth`, `docs_page_missing`, `tool_error:TypeError`, …), so one
cause is one cluster, named the same in every iteration of an experiment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from domain.clustering import explanations as text
from domain.clustering.explanations import Area, ClusterFacts
from domain.clustering.normalize import (
    http_statuses_in,
    normalize_message,
    normalize_url,
    url_parts,
)
from domain.clustering.signatures import Signature, ToolError, is_docs_tool

# Placeholders and the text of URLs and paths: whatever their words say, they name a place.
_NOT_PROSE = re.compile(r"\S*(?:://|/)\S*|<\w+>")
_EXCEPTION = re.compile(
    r"\b(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Timeout|Failure|Fault))\b"
)
_AUTH_KIND = re.compile(r"Auth|Unauthori[sz]ed|PermissionDenied|Forbidden|Credential|ApiKey")
_RATE_KIND = re.compile(r"RateLimit|Throttl|TooManyRequests")
_TIMEOUT_KIND = re.compile(r"Timeout|TimedOut|TimeoutExpired")
_CONNECTION_KIND = re.compile(r"Connection|NameResolution|Unreachable|gaierror|DNS")
_DEPENDENCY_KIND = re.compile(r"ModuleNotFound|ImportError|PackageNotFound|DistributionNotFound")
_NOT_FOUND_KIND = re.compile(r"FileNotFound|NotFound|NoSuchFile")
_INVALID_KIND = re.compile(r"Validation|InvalidRequest|BadRequest|Unprocessable")

_AUTH_WORDS = re.compile(
    r"unauthori[sz]ed|forbidden|authenticat|invalid (?:api[ _-]?)?(?:key|token)"
    r"|(?:missing|expired|revoked) (?:api[ _-]?)?(?:key|token)|access denied|credentials",
    re.IGNORECASE,
)
_RATE_WORDS = re.compile(r"rate[ _-]?limit|too many requests|throttl", re.IGNORECASE)
_TIMEOUT_WORDS = re.compile(
    r"\btimed?[\s-]?out\b|\btimeout\b|\bdeadline exceeded\b|\bno response\b", re.IGNORECASE
)
_CONNECTION_WORDS = re.compile(
    r"connection refused|could not resolve host|name or service not known|network is unreachable"
    r"|failed to establish a new connection|getaddrinfo|ECONNREFUSED|ENOTFOUND",
    re.IGNORECASE,
)
_DEPENDENCY_WORDS = re.compile(
    r"command not found|no module named|no matching distribution|is not installed"
    r"|cannot find module|not recognized as an internal or external command",
    re.IGNORECASE,
)
_MISSING_WORDS = re.compile(r"not found|no such file|does not exist|no such page", re.IGNORECASE)
_INVALID_WORDS = re.compile(r"\binvalid (?:request|parameter|argument|field)|validation", re.I)
_DOCS_PATH = re.compile(r"(?:^|/)(?:docs?|guides?|reference|tutorials?)(?:/|$)|\.mdx?$", re.I)
_URL = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>`()\[\]{}\\|]+")
_HOST_ARGUMENT = re.compile(r"\bhost=['\"]?([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_PACKAGE = re.compile(
    r"no module named ['\"]?([\w.-]+)|no matching distribution found for ([\w.-]+)"
    r"|([\w.-]+): command not found|cannot find module ['\"]([\w@/.-]+)"
    r"|['\"]?([\w.-]+)['\"]? is not (?:installed|recognized)",
    re.IGNORECASE,
)
# Tools whose calls are commands: their place is the command, not the tool.
SHELL_TOOLS = frozenset({"shell", "bash", "sh", "terminal", "run_command", "execute_command"})
# How often one docs call must repeat, at the step limit, to be a loop rather than a re-check.
LOOP_READS = 3


@dataclass(frozen=True, slots=True)
class CauseRule:
    """One root cause: when it applies, its area, the kind of place it happens at, its texts."""

    key: str
    category: str
    area: Area
    when: str
    place_kind: str
    explain: Callable[[ClusterFacts], str]
    fix: Callable[[ClusterFacts, Area], str]
    # Product-side failures whose agents mostly said the docs fall short are docs problems.
    docs_when_docs_gap: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    """A run's decisive cause: its rule, its stable key and name, where it happened, and the
    transcript event and text that show it (event None: no transcript event shows it)."""

    rule: CauseRule
    key: str
    category: str
    place: tuple[str, str]  # (kind, name)
    event: int | None
    text: str
    fingerprint: str


def _rule(key: str, category: str, area: Area, when: str, place_kind: str, name: str) -> CauseRule:
    explain = getattr(text, f"explain_{name}")
    fix = getattr(text, f"fix_{name}")
    gap = name in ("auth", "endpoint", "invalid", "tool")
    return CauseRule(key, category, area, when, place_kind, explain, fix, gap)


RULES: tuple[CauseRule, ...] = (
    _rule("runner_error", "Runner or model provider errors", "infra",
          "status errored: the runner or the model provider failed", "environment", "runner"),
    _rule("auth", "Authentication failures", "product",
          "HTTP 401/403; else an auth exception (AuthenticationError); else auth words in the "
          "error (invalid API key, unauthorized)", "host", "auth"),
    _rule("rate_limit", "Rate limiting (HTTP 429)", "infra",
          "HTTP 429; else a RateLimitError; else rate-limit words in the error (not in a URL)",
          "host", "rate"),
    _rule("server_error", "Server errors (HTTP 5xx)", "infra",
          "HTTP 500-599 other than 504", "host", "server"),
    _rule("service_timeout", "Services that did not answer in time", "infra",
          "HTTP 408/504, a timeout exception or 'timed out', on a call to a host; or the time "
          "limit ended the run while a call to a host was pending", "host", "timeout"),
    _rule("unreachable", "Services that could not be reached", "infra",
          "a connection error (ConnectionError, connection refused, could not resolve host)",
          "host", "unreachable"),
    _rule("docs_page_missing", "Docs pages that do not exist", "docs",
          "HTTP 404/410 on a docs URL (docs. host, /docs/ or /guides/ path, .md) or from a docs "
          "tool; FileNotFoundError or 'not found' from a docs tool", "page", "docs_page"),
    _rule("endpoint_missing", "API endpoints that do not exist", "product",
          "HTTP 404/405/410 anywhere else", "endpoint", "endpoint"),
    _rule("invalid_request", "Requests rejected as invalid", "product",
          "HTTP 400/409/422, or a ValidationError", "endpoint", "invalid"),
    _rule("dependency_missing", "Packages or commands that are not installed", "infra",
          "ModuleNotFoundError/ImportError, 'command not found', 'No matching distribution'",
          "package", "dependency"),
    _rule("hung_command", "Shell commands that never returned", "infra",
          "a command that timed out, or was pending when the time limit ended the run, and "
          "called no host", "command", "hung"),
    _rule("tool_error", "Failed tool calls without an error type", "agent",
          "any other tool error; one cluster per exception type ('TypeError in tool calls'); "
          "without a type, only when no limit ended the run",
          "tool", "tool"),
    _rule("doc_loop", "Agents re-reading the same docs page to the step limit", "docs",
          f"no error, the step limit ended the run, and one docs call was made {LOOP_READS}+ "
          "times with the same input", "page", "loop"),
    _rule("step_limit", "Runs that used every step", "agent",
          "no error, the step limit ended the run", "task", "max_steps"),
    _rule("time_limit", "Runs stopped by the time limit", "agent",
          "no error and no call pending, the time limit ended the run", "task", "time_limit"),
    _rule("budget", "Runs that exceeded their budget", "agent",
          "no error, the budget ended the run", "task", "budget"),
    _rule("gave_up", "Agents that gave up", "agent",
          "no error, and the final answer gives up or proposes a workaround", "task", "gave_up"),
    _rule("wrong_answer", "Answers that missed the success criteria", "agent",
          "anything else: no error, the agent answered, the success criteria did not hold",
          "task", "unfinished"),
)  # fmt: skip

_BY_KEY = {rule.key: rule for rule in RULES}
# Among a run's errors, the strongest cause decides (earlier is stronger).
ERROR_CAUSES = (
    "auth",
    "rate_limit",
    "server_error",
    "service_timeout",
    "unreachable",
    "docs_page_missing",
    "endpoint_missing",
    "invalid_request",
    "dependency_missing",
    "hung_command",
    "tool_error",
)


def rule_for(key: str) -> CauseRule:
    """The rule of a cause key (`tool_error:TypeError` is the `tool_error` rule's)."""
    return _BY_KEY[key.partition(":")[0]]


def area_of(rule: CauseRule, facts: ClusterFacts) -> Area:
    """The rule's area, or `docs` when it allows and most runs said the docs fall short."""
    if rule.docs_when_docs_gap and facts.docs_gap * 2 > facts.runs:
        return "docs"
    return rule.area


def decide(signature: Signature, task: str, environment: str) -> Finding:
    """The decisive cause of one failing run (see the module's order)."""
    if signature.status == "errored":
        runner = next((e for e in reversed(signature.errors) if e.tool is None), None)
        shown = runner or (signature.errors[-1] if signature.errors else None)
        return _finding("runner_error", ("environment", environment), shown, signature)
    found = _unanswered_call(signature)
    if found is None:
        found = _decisive_tool_error(signature)
    return found if found is not None else _how_it_ended(signature, task)


def _unanswered_call(signature: Signature) -> Finding | None:
    """A call still waiting for its result when the time limit ended the run."""
    pending = signature.unanswered
    if pending is None or not (
        signature.status == "timed_out" or signature.termination_reason == "timeout"
    ):
        return None
    host = _host_of(pending)
    waiting = replace(pending, text=f"{pending.text} (no result before the time limit)")
    if host:
        return _finding("service_timeout", ("host", host), waiting, signature)
    return _finding("hung_command", ("command", _command(pending)), waiting, signature)


def _decisive_tool_error(signature: Signature) -> Finding | None:
    """The error of the highest-ranked cause (the last of them), unless it names nothing and
    a limit ended the run."""
    tool_errors = [e for e in signature.errors if e.tool is not None] or list(signature.errors)
    if not tool_errors:
        return None
    causes = [(error_cause(e), e) for e in tool_errors]
    rank = min(ERROR_CAUSES.index(key.partition(":")[0]) for key, _ in causes)
    key, error = [(k, e) for k, e in causes if k.partition(":")[0] == ERROR_CAUSES[rank]][-1]
    # A failed call that names no error type says less than the limit that ended the run.
    if key != "tool_error" or not _ended_by_limit(signature):
        return _finding(key, place_of(key, error), error, signature)
    return None


def _how_it_ended(signature: Signature, task: str) -> Finding:
    """No error decides: the limit that ended the run, giving up, or a wrong answer."""
    if signature.termination_reason == "max_steps":
        loop = signature.repeated_read
        if loop is not None and loop[1] >= LOOP_READS:
            page = loop[0].partition(" ")[2] or loop[0]
            said = f"{loop[0]} (called {loop[1]} times with this input; no tool error)"
            return Finding(
                _BY_KEY["doc_loop"], "doc_loop", _BY_KEY["doc_loop"].category,
                ("page", page), None, said, normalize_message(loop[0]),
            )  # fmt: skip
        return _ending("step_limit", task, signature)
    if signature.status == "timed_out" or signature.termination_reason == "timeout":
        return _ending("time_limit", task, signature)
    if signature.termination_reason == "budget_exceeded":
        return _ending("budget", task, signature)
    if signature.gave_up:
        return _ending("gave_up", task, signature)
    return _ending("wrong_answer", task, signature)


def error_cause(error: ToolError) -> str:
    """The cause one error shows: status code, else exception type, else the error's words
    (outside URLs, paths and ids)."""
    statuses = http_statuses_in([error.message])
    prose = _NOT_PROSE.sub(" ", error.message)
    kinds = " ".join(m.group(1) for m in _EXCEPTION.finditer(prose))
    docs = _on_docs(error)
    cause = _cause_by_status(statuses, error, docs)
    if cause is None and kinds:
        cause = _cause_by_kind(kinds, error, docs)
    if cause is None and (not kinds or not statuses):
        cause = _cause_by_words(prose, error, docs, kinds)
    if cause is not None:
        return cause
    return f"tool_error:{kinds.split()[0]}" if kinds else "tool_error"


def _cause_by_status(statuses: tuple[int, ...], error: ToolError, docs: bool) -> str | None:
    if any(s in (401, 403) for s in statuses):
        return "auth"
    if 429 in statuses:
        return "rate_limit"
    if any(s in (408, 504) for s in statuses):
        return _timeout(error)
    if any(500 <= s < 600 for s in statuses):
        return "server_error"
    if any(s in (404, 405, 410) for s in statuses):
        return "docs_page_missing" if docs else "endpoint_missing"
    if any(s in (400, 409, 422) for s in statuses):
        return "invalid_request"
    return None


def _cause_by_kind(kinds: str, error: ToolError, docs: bool) -> str | None:
    by_kind = (
        (_AUTH_KIND, "auth"),
        (_RATE_KIND, "rate_limit"),
        (_DEPENDENCY_KIND, "dependency_missing"),
        (_CONNECTION_KIND, "unreachable"),
        (_INVALID_KIND, "invalid_request"),
    )
    for pattern, key in by_kind:
        if pattern.search(kinds):
            return key
    if _TIMEOUT_KIND.search(kinds):
        return _timeout(error)
    if _NOT_FOUND_KIND.search(kinds) and docs:
        return "docs_page_missing"
    return None


def _cause_by_words(prose: str, error: ToolError, docs: bool, kinds: str) -> str | None:
    if _AUTH_WORDS.search(prose):
        return "auth"
    if _RATE_WORDS.search(prose):
        return "rate_limit"
    if _CONNECTION_WORDS.search(prose):
        return "unreachable"
    if _TIMEOUT_WORDS.search(prose):
        return _timeout(error)
    if _DEPENDENCY_WORDS.search(error.text):
        return "dependency_missing"
    if docs and _MISSING_WORDS.search(prose):
        return "docs_page_missing"
    if not kinds and _INVALID_WORDS.search(prose):
        return "invalid_request"
    return None


def exception_names(message: str) -> list[str]:
    """The exception types an error names, outside URLs and paths, in order."""
    return [m.group(1) for m in _EXCEPTION.finditer(_NOT_PROSE.sub(" ", message))]


def place_of(key: str, error: ToolError) -> tuple[str, str]:
    """Where an error's cause happened, as (kind, name); the cause's kind when it can be read."""
    place = _cause_place(key.partition(":")[0], error)
    if place is not None:
        return place
    if error.call and error.tool in SHELL_TOOLS:
        return ("command", _command(error))
    return ("tool", error.tool or "runner")


def _cause_place(cause: str, error: ToolError) -> tuple[str, str] | None:
    host = _host_of(error)
    if cause in ("auth", "rate_limit", "server_error", "service_timeout", "unreachable"):
        return ("host", host) if host else None
    if cause == "docs_page_missing":
        return ("page", _page(error))
    if cause in ("endpoint_missing", "invalid_request"):
        route = _route(error)
        if route:
            return ("endpoint", route)
        return ("host", host) if host else None
    if cause == "dependency_missing":
        found = _PACKAGE.search(error.text)
        return ("package", next(g for g in found.groups() if g)) if found else None
    if cause == "hung_command":
        return ("command", _command(error))
    return None


def _finding(
    key: str, place: tuple[str, str], shown: ToolError | None, signature: Signature
) -> Finding:
    rule = rule_for(key)
    category = rule.category
    if key.startswith("tool_error:"):
        category = f"{key.partition(':')[2]} in tool calls"
    if shown is None:
        said = f"{signature.status}, {signature.termination_reason or 'no reason'}: no transcript"
        return Finding(rule, key, category, place, None, said, normalize_message(said))
    return Finding(rule, key, category, place, shown.event, shown.text, shown.message)


_LIMITS = {"step_limit": "the step limit", "time_limit": "the time limit", "budget": "the budget"}


def _ending(key: str, task: str, signature: Signature) -> Finding:
    """A run that ended without an error. A limit's evidence says so, with the agent's last
    words; an answer's evidence is the answer."""
    rule = _BY_KEY[key]
    last = " ".join(signature.final_text.split())
    if key in _LIMITS:
        said = f"ended by {_LIMITS[key]} after {signature.tool_calls} tool calls, no tool error" + (
            f"; last words: {last}" if last else ""
        )
        fingerprint = normalize_message(f"{key} {signature.final_answer}")
        return Finding(
            rule, key, rule.category, ("task", task), signature.final_event, said, fingerprint
        )
    if last:
        return Finding(
            rule, key, rule.category, ("task", task), signature.final_event,
            signature.final_text, signature.final_answer,
        )  # fmt: skip
    said = (
        f"{signature.status}, {signature.termination_reason or 'no reason'} after "
        f"{signature.tool_calls} tool calls, no tool error and no final answer"
    )
    return Finding(rule, key, rule.category, ("task", task), None, said, normalize_message(said))


def _ended_by_limit(signature: Signature) -> bool:
    return signature.status == "timed_out" or signature.termination_reason in (
        "timeout",
        "max_steps",
        "budget_exceeded",
    )


def _timeout(error: ToolError) -> str:
    return "service_timeout" if _host_of(error) else "hung_command"


def _urls(error: ToolError) -> list[str]:
    return _URL.findall(error.text) + _URL.findall(error.call or "")


def _host_of(error: ToolError) -> str | None:
    for url in _urls(error):
        host = url_parts(url)[0]
        if host:
            return host
    found = _HOST_ARGUMENT.search(error.text)
    return found.group(1).lower() if found else None


def _is_docs_url(url: str) -> bool:
    host, _, path = "".join(url_parts(url)).partition("/")
    return host.startswith(("docs.", "doc.")) or bool(_DOCS_PATH.search("/" + path))


def _on_docs(error: ToolError) -> bool:
    if error.tool is not None and is_docs_tool(error.tool):
        return True
    return any(_is_docs_url(url) for url in _urls(error))


def _page(error: ToolError) -> str:
    docs_urls = [u for u in _urls(error) if _is_docs_url(u)]
    if docs_urls:
        return "".join(url_parts(docs_urls[0]))
    if error.call:
        return error.call.partition(" ")[2].strip() or error.call
    return error.tool or "docs"


def _route(error: ToolError) -> str | None:
    for url in _urls(error):
        if not _is_docs_url(url):
            return normalize_url(url).partition("://")[2].rstrip(".,;:")
    return None


def _command(error: ToolError) -> str:
    """The command of a call (its tool's name dropped), with what varies normalised."""
    call = error.call or error.text
    command = call.partition(" ")[2].strip() or call
    normalized = normalize_message(command)
    return normalized if len(normalized) <= 60 else normalized[:59] + "…"
