"""Explanations and fixes of clusters, written from their evidence: counts, statuses, hosts,
pages, the commonest error as one run recorded it. Rule-based and deterministic: the same
facts give the same words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Area = Literal["product", "docs", "infra", "agent"]

STATUS_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """What a cluster's runs have in common and how they differ: the material of its texts."""

    runs: int
    tasks: tuple[str, ...]
    environments: tuple[str, ...]
    statuses: Counter[int]
    hosts: Counter[str]
    routes: Counter[str]  # endpoints and pages, variable segments as <id>
    tools: Counter[str]
    kinds: Counter[str]
    messages: Counter[str]  # fingerprint of each run's telling error
    examples: dict[str, str]  # fingerprint -> its text in the first run that had it
    final_answers: Counter[str]  # normalised
    final_examples: dict[str, str]  # normalised final answer -> as the first run wrote it
    docs_gap: int
    read_docs: int
    ended_by_time_limit: int
    signals: Counter[str]


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def top(counter: Counter[str] | Counter[int], limit: int) -> list[str]:
    """The most common values, most common first, ties by value: deterministic."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))
    return [str(value) for value, _ in ranked[:limit]]


def listing(values: Sequence[str], total: int | None = None) -> str:
    """`a`, `a and b`, `a, b and c`, `a, b, c and 4 more`."""
    more = (total or len(values)) - len(values)
    items = list(values) + ([f"{more} more"] if more > 0 else [])
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _quote(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return f'"{text if len(text) <= limit else text[: limit - 1] + "…"}"'


def _statuses(facts: ClusterFacts) -> str:
    codes = [int(code) for code in top(facts.statuses, 3)]
    return listing([f"{c} {STATUS_NAMES[c]}" if c in STATUS_NAMES else str(c) for c in codes])


def _from_hosts(facts: ClusterFacts) -> str:
    hosts = top(facts.hosts, 2)
    return f" from {listing(hosts, len(facts.hosts))}" if hosts else ""


def _example(facts: ClusterFacts) -> str:
    """The commonest error, as one run recorded it."""
    message = top(facts.messages, 1)
    if not message:
        return ""
    lead = ": " if facts.runs == 1 else ", e.g. "
    return lead + _quote(facts.examples[message[0]])


def _common_error(facts: ClusterFacts, limit: int = 80) -> str | None:
    message = top(facts.messages, 1)
    return _quote(facts.examples[message[0]], limit) if message else None


def _docs_remark(facts: ClusterFacts) -> str:
    if not facts.docs_gap:
        return ""
    if facts.runs == 1:
        return "; the agent said the docs do not explain what it needed"
    who = "all of them" if facts.docs_gap == facts.runs else f"{facts.docs_gap} of them"
    return f"; {who} said the docs do not explain what they needed"


def _after_docs(facts: ClusterFacts) -> str:
    return " after reading the docs" if facts.read_docs * 2 > facts.runs else ""


def _target(facts: ClusterFacts) -> str:
    if facts.routes:
        return listing(top(facts.routes, 2), len(facts.routes))
    if facts.hosts:
        return listing(top(facts.hosts, 2), len(facts.hosts))
    if facts.tools:
        return f"the {listing(top(facts.tools, 2))} tool"
    return "the service it called"


def explain_auth(f: ClusterFacts) -> str:
    got = _statuses(f) or "authentication errors"
    return (
        f"{_runs(f.runs)} got {got}{_from_hosts(f)}{_after_docs(f)}{_example(f)}{_docs_remark(f)}."
    )


def fix_auth(f: ClusterFacts, area: Area) -> str:
    host = top(f.hosts, 1)[0] if f.hosts else "the API"
    if area == "docs":
        return (
            "Say in the quickstart where the API key comes from and how to pass it (header or "
            f"environment variable), with one working authenticated request to {host}."
        )
    return (
        f"Make {host}'s auth errors say what is wrong with the key and where to get a valid "
        "one, and check that the keys the agents were given are valid for these tasks."
    )


def explain_rate(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} were rate limited{_from_hosts(f)}{_example(f)}."


def fix_rate(f: ClusterFacts, area: Area) -> str:
    host = top(f.hosts, 1)[0] if f.hosts else "the service"
    return (
        f"Raise the rate limit of {host} for test keys or lower the iteration's concurrency, "
        "and make clients honour retry-after."
    )


def explain_timeout(f: ClusterFacts) -> str:
    if not f.ended_by_time_limit:
        limit = ""
    elif f.runs == 1:
        limit = "; the run's time limit ended it"
    else:
        limit = f"; the run's time limit ended {f.ended_by_time_limit} of them"
    return f"{_runs(f.runs)} waited on {_target(f)} until it timed out{_example(f)}{limit}."


def fix_timeout(f: ClusterFacts, area: Area) -> str:
    return (
        f"Make {_target(f)} answer, or fail fast with a clear error, within seconds: check its "
        "health, load and timeouts."
    )


def explain_server(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} got {_statuses(f)}{_from_hosts(f)}{_example(f)}."


def fix_server(f: ClusterFacts, area: Area) -> str:
    where = (
        f"from {top(f.hosts, 1)[0]} in its logs"
        if f.hosts
        else "in the logs of the service or model provider that sent them"
    )
    return (
        f"Investigate the {_statuses(f)} {where}; if they are transient (overload, deploys), "
        "retry with backoff."
    )


def _pages(f: ClusterFacts) -> str:
    return listing(top(f.routes, 3), len(f.routes)) if f.routes else "the pages they looked for"


def _exist(f: ClusterFacts) -> str:
    return "exists" if len(f.routes) == 1 else "exist"


def explain_docs_page(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} got 404 for docs pages that do not exist: {_pages(f)}{_example(f)}."


def fix_docs_page(f: ClusterFacts, area: Area) -> str:
    return (
        f"Publish or redirect {_pages(f)}, and remove the links and search results that "
        "point at them."
    )


def explain_endpoint(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} got {_statuses(f)} calling {_pages(f)}{_example(f)}{_docs_remark(f)}."


def fix_endpoint(f: ClusterFacts, area: Area) -> str:
    if area == "docs":
        return f"Document the endpoints these tasks need: the agents guessed {_pages(f)}."
    return (
        f"Check that {_pages(f)} {_exist(f)}, or answer with an error that names the right "
        "endpoint."
    )


def explain_max_steps(f: ClusterFacts) -> str:
    common = _common_error(f, 120)
    repeating = f", repeating errors like {common}" if common else ""
    return f"{_runs(f.runs)} used every step without finishing{repeating}."


def fix_max_steps(f: ClusterFacts, area: Area) -> str:
    common = _common_error(f)
    error = f" (here {common})" if common else ""
    return (
        f"Make the error say what is valid{error} and show the call in the docs; let the "
        "agent stop or change approach when the same error repeats."
    )


def explain_budget(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} exceeded their budget before finishing{_example(f)}."


def fix_budget(f: ClusterFacts, area: Area) -> str:
    return "Find what spends the budget (long outputs, repeated calls) or raise it for these tasks."


def explain_runner(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} errored in the runner or the model provider{_example(f)}."


def fix_runner(f: ClusterFacts, area: Area) -> str:
    what = _common_error(f) or "the runner error"
    return f"Fix {what} in the runner or provider setup and rerun these runs."


def explain_invalid(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} got {_statuses(f)}{_from_hosts(f)}{_example(f)}{_docs_remark(f)}."


def fix_invalid(f: ClusterFacts, area: Area) -> str:
    requests = f" of {_pages(f)}" if f.routes else ""
    if area == "docs":
        return f"Document the required fields and formats{requests}, with a complete example."
    return f"Make the validation errors{requests} name the field and the value they expect."


def _common_answer(facts: ClusterFacts) -> str | None:
    answer = top(facts.final_answers, 1)
    return _quote(facts.final_examples[answer[0]]) if answer else None


def explain_gave_up(f: ClusterFacts) -> str:
    answer = _common_answer(f)
    said = (": " if f.runs == 1 else ", e.g. ") + answer if answer else ""
    return f"{_runs(f.runs)} met no error but gave up or proposed a workaround{said}."


def fix_gave_up(f: ClusterFacts, area: Area) -> str:
    tasks = listing(list(f.tasks[:3]), len(f.tasks))
    return (
        f"Make the supported way to do {tasks} easy to find from the docs the agent reads "
        "first, so it does not fall back to a workaround."
    )


def explain_tool(f: ClusterFacts) -> str:
    kinds = top(f.kinds, 2)
    what = listing(kinds) if kinds else "tool errors"
    tools = top(f.tools, 2)
    where = f" in {listing(tools)}" if tools else ""
    return f"{_runs(f.runs)} failed on {what}{where}{_example(f)}{_docs_remark(f)}."


def fix_tool(f: ClusterFacts, area: Area) -> str:
    error = _common_error(f) or "this error"
    if area == "docs":
        return f"Document how to avoid {error}: the agents said the docs do not explain it."
    return (
        f"Make {error} say how to fix it, and check that the agent reads errors and the docs "
        "before retrying."
    )


def explain_unfinished(f: ClusterFacts) -> str:
    answer = _common_answer(f)
    said = (
        (f"; its final answer: {answer}" if f.runs == 1 else f"; final answers like {answer}")
        if answer
        else ""
    )
    return (
        f"{_runs(f.runs)} ended without an error but did not meet the task's success "
        f"criteria{said}."
    )


def fix_unfinished(f: ClusterFacts, area: Area) -> str:
    return (
        "Compare these answers with the success criteria: the task may be ambiguous, or the "
        "agent stops before the work is done."
    )


def scope_remark(facts: ClusterFacts) -> str:
    """Where the cluster shows: whether a failure is one environment's or every one's."""
    if facts.runs < 2:
        return ""
    tasks = f"{len(facts.tasks)} task{'s' if len(facts.tasks) != 1 else ''}"
    envs = f"{len(facts.environments)} environment{'s' if len(facts.environments) != 1 else ''}"
    names = listing(list(facts.tasks[:3]), len(facts.tasks))
    env_names = listing(list(facts.environments[:3]), len(facts.environments))
    return f" Seen in {tasks} ({names}) and {envs} ({env_names})."


def signals_remark(facts: ClusterFacts) -> str:
    """The signals that fired in at least half of the cluster's runs."""
    common = sorted(s for s, n in facts.signals.items() if n * 2 >= facts.runs)
    if not common:
        return ""
    lead = "Signals that fired" if facts.runs == 1 else "Signals that fired in most of them"
    return f" {lead}: {', '.join(common)}."
