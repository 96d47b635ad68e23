"""Explanations and fixes of clusters, written from their evidence: counts, statuses, the
places each cause happened at (hosts, pages, endpoints, commands) with their counts, the
commonest error as one run recorded it. Rule-based and deterministic: the same facts give the
same words; a fix names the places to fix."""

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
    places: Counter[str]  # where each run's cause happened: a host, page, endpoint, command…
    place_kinds: dict[str, str]  # place -> host | page | endpoint | package | command | …
    loop_reads: int = 0  # how often the looping runs repeated their docs call, in all


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


def places_text(facts: ClusterFacts, limit: int = 3) -> str:
    """`a (3), b (2) and 4 more`: the commonest places with their run counts."""
    ranked = sorted(facts.places.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"{name} ({n})" for name, n in ranked[:limit]]
    return listing(shown, len(ranked))


def _names(facts: ClusterFacts, limit: int = 3) -> str:
    """The commonest places, without counts: for fixes."""
    return listing(top(facts.places, limit), len(facts.places))


def _services(facts: ClusterFacts) -> str:
    """The hosts among the places, for fixes addressed to services; where the errors named no
    host, the API as the agents' commands met it."""
    hosts = Counter(
        {name: n for name, n in facts.places.items() if facts.place_kinds[name] == "host"}
    )
    others = Counter({name: n for name, n in facts.places.items() if name not in hosts})
    named = listing(top(hosts, 3), len(hosts))
    if not others:
        return named
    met = f"the API (called from {listing(top(others, 2), len(others))})"
    return f"{named} and {met}" if hosts else met


def _at(facts: ClusterFacts, lead: str = " at ") -> str:
    return f"{lead}{places_text(facts)}" if facts.places else ""


def explain_runner(f: ClusterFacts) -> str:
    return (
        f"{_runs(f.runs)} errored in the runner or the model provider{_at(f, ' in ')}{_example(f)}."
    )


def fix_runner(f: ClusterFacts, area: Area) -> str:
    what = _common_error(f) or "the runner error"
    return f"Fix {what} in the runner or provider setup of {_names(f)} and rerun these runs."


def explain_auth(f: ClusterFacts) -> str:
    got = _statuses(f) or "authentication errors"
    where = _at(f, " from ")
    return f"{_runs(f.runs)} got {got}{where}{_after_docs(f)}{_example(f)}{_docs_remark(f)}."


def fix_auth(f: ClusterFacts, area: Area) -> str:
    if area == "docs":
        return (
            "Say in the quickstart where the API key comes from and how to pass it (header or "
            f"environment variable), with one working authenticated request to {_services(f)}."
        )
    return (
        f"Make the auth errors of {_services(f)} say what is wrong with the key and where to get "
        "a valid one, and check that the keys the agents were given are valid for these tasks."
    )


def explain_rate(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} were rate limited{_at(f, ' by ')}{_example(f)}."


def fix_rate(f: ClusterFacts, area: Area) -> str:
    return (
        f"Raise the rate limits of {_services(f)} for test keys or lower the iteration's "
        "concurrency, and make clients honour Retry-After."
    )


def explain_server(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} got {_statuses(f) or 'server errors'}{_at(f, ' from ')}{_example(f)}."


def fix_server(f: ClusterFacts, area: Area) -> str:
    return (
        f"Investigate the {_statuses(f) or 'server errors'} in the logs of {_services(f)}; if "
        "they are transient (overload, deploys), retry with backoff."
    )


def explain_timeout(f: ClusterFacts) -> str:
    if not f.ended_by_time_limit:
        limit = ""
    elif f.runs == 1:
        limit = "; the run's time limit ended it"
    else:
        limit = f"; the run's time limit ended {f.ended_by_time_limit} of them"
    return (
        f"{_runs(f.runs)} waited on a service that did not answer in time{_at(f, ': ')}"
        f"{_example(f)}{limit}."
    )


def fix_timeout(f: ClusterFacts, area: Area) -> str:
    return (
        f"Make {_services(f)} answer, or fail fast with a clear error, within seconds: check "
        "the health, load and timeouts of each."
    )


def explain_unreachable(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} could not connect{_at(f, ' to ')}{_example(f)}."


def fix_unreachable(f: ClusterFacts, area: Area) -> str:
    return (
        f"Check that {_services(f)} can be reached from the environments (DNS, sandbox "
        "network, firewall), and that the docs give the right hostnames."
    )


def explain_docs_page(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} asked for docs pages that do not exist{_at(f, ': ')}{_example(f)}."


def fix_docs_page(f: ClusterFacts, area: Area) -> str:
    return (
        f"Publish or redirect {_names(f)}, and remove the links and search results that "
        "point at them."
    )


def explain_endpoint(f: ClusterFacts) -> str:
    got = _statuses(f) or "not found"
    return (
        f"{_runs(f.runs)} got {got} from API endpoints that do not exist{_at(f, ': ')}{_example(f)}"
        f"{_docs_remark(f)}."
    )


def fix_endpoint(f: ClusterFacts, area: Area) -> str:
    if area == "docs":
        return f"Document the endpoints these tasks need: the agents guessed {_names(f)}."
    return (
        f"Check whether {_names(f)} should exist; else answer them with an error that names "
        "the right endpoint."
    )


def explain_invalid(f: ClusterFacts) -> str:
    got = _statuses(f) or "validation errors"
    return f"{_runs(f.runs)} got {got}{_at(f, ' from ')}{_example(f)}{_docs_remark(f)}."


def fix_invalid(f: ClusterFacts, area: Area) -> str:
    if area == "docs":
        return f"Document the required fields and formats of {_names(f)}, with a complete example."
    return f"Make the validation errors of {_names(f)} name the field and the value they expect."


def explain_dependency(f: ClusterFacts) -> str:
    missing = _at(f, ": ")
    what = "needed packages or commands that were not installed"
    return f"{_runs(f.runs)} {what}{missing}{_example(f)}."


def fix_dependency(f: ClusterFacts, area: Area) -> str:
    return (
        f"Install {_names(f)} in the environments' images, or put the install step (with the "
        "exact package names) first in the quickstart."
    )


def explain_hung(f: ClusterFacts) -> str:
    ended = (
        f"; the run's time limit ended {f.ended_by_time_limit} of them"
        if f.ended_by_time_limit and f.runs > 1
        else ("; the run's time limit ended it" if f.ended_by_time_limit else "")
    )
    return (
        f"{_runs(f.runs)} ran shell commands that never returned{_at(f, ': ')}{_example(f)}"
        f"{ended}. "
        "No service was called: the command itself waited (for input, a lock or a process)."
    )


def fix_hung(f: ClusterFacts, area: Area) -> str:
    return (
        f"Give commands like {_names(f, 2)} a timeout in the environment and run them "
        "non-interactively (flags such as --yes, --no-input); say so in the docs that show them."
    )


def explain_tool(f: ClusterFacts) -> str:
    kinds = top(f.kinds, 2)
    what = listing(kinds) if kinds else "tool errors"
    return f"{_runs(f.runs)} failed on {what}{_at(f, ' in ')}{_example(f)}{_docs_remark(f)}."


def fix_tool(f: ClusterFacts, area: Area) -> str:
    error = _common_error(f) or "this error"
    if area == "docs":
        return (
            f"Document how to avoid {error} when using {_names(f)}: the agents said the docs "
            "do not explain it."
        )
    return (
        f"Make {error} from {_names(f)} say how to fix it, and check that the agent reads "
        "errors and the docs before retrying."
    )


def explain_loop(f: ClusterFacts) -> str:
    return (
        f"{_runs(f.runs)} met no error but re-read one docs page until the step limit "
        f"({f.loop_reads} reads of it in all){_at(f, ': ')}. The page does not answer what "
        "the task needs, and the agent did not look elsewhere."
    )


def fix_loop(f: ClusterFacts, area: Area) -> str:
    tasks = listing(list(f.tasks[:3]), len(f.tasks))
    return (
        f"Make {_names(f)} answer what {tasks} need (or link to the page that does), and let "
        "the agent stop re-reading a page it has already read."
    )


def explain_max_steps(f: ClusterFacts) -> str:
    return (
        f"{_runs(f.runs)} met no error and repeated no docs page, but used every step without "
        f"finishing{_at(f, ' in ')}{_answer_remark(f, 'last message')}."
    )


def fix_max_steps(f: ClusterFacts, area: Area) -> str:
    return (
        f"Read where the steps of {_names(f)} went: if the work needs more steps, raise the "
        "limit for these tasks; else show the shortest path in the docs."
    )


def explain_time_limit(f: ClusterFacts) -> str:
    return (
        f"{_runs(f.runs)} were stopped by the time limit with no call pending and no error"
        f"{_at(f, ' in ')}{_answer_remark(f, 'last message')}."
    )


def fix_time_limit(f: ClusterFacts, area: Area) -> str:
    return (
        f"Check whether {_names(f)} fit in the time limit (model latency, slow steps); raise "
        "the limit for them or make the steps faster."
    )


def explain_budget(f: ClusterFacts) -> str:
    return f"{_runs(f.runs)} exceeded their budget before finishing{_at(f, ' in ')}{_example(f)}."


def fix_budget(f: ClusterFacts, area: Area) -> str:
    return (
        f"Find what spends the budget in {_names(f)} (long outputs, repeated calls) or raise "
        "it for these tasks."
    )


def _common_answer(facts: ClusterFacts) -> str | None:
    answer = top(facts.final_answers, 1)
    return _quote(facts.final_examples[answer[0]]) if answer else None


def _answer_remark(f: ClusterFacts, what: str = "final answer") -> str:
    answer = _common_answer(f)
    if not answer:
        return ""
    return f"; its {what}: {answer}" if f.runs == 1 else f"; {what}s like {answer}"


def explain_gave_up(f: ClusterFacts) -> str:
    answer = _common_answer(f)
    said = (": " if f.runs == 1 else ", e.g. ") + answer if answer else ""
    return (
        f"{_runs(f.runs)} met no error but gave up or proposed a workaround{_at(f, ' in ')}{said}."
    )


def fix_gave_up(f: ClusterFacts, area: Area) -> str:
    return (
        f"Make the supported way to do {_names(f)} easy to find from the docs the agent reads "
        "first, so it does not fall back to a workaround."
    )


def explain_unfinished(f: ClusterFacts) -> str:
    return (
        f"{_runs(f.runs)} ended without an error but did not meet the task's success "
        f"criteria{_at(f, ' in ')}{_answer_remark(f)}."
    )


def fix_unfinished(f: ClusterFacts, area: Area) -> str:
    return (
        f"Compare these answers with the success criteria of {_names(f)}: the task may be "
        "ambiguous, or the agent stops before the work is done."
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
