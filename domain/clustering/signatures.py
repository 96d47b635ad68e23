"""A failing run's signature: what it failed on, as a fingerprint that other runs can share.

The signature holds the run's last tool errors (raw excerpt for evidence, normalised message
for grouping), the runner's error, HTTP statuses, exception names, hosts, the termination
reason, the tool call left unanswered when the run ended, how the agent ended (gave up, said the
docs fall short) and the signals that fired. Everything is derived from the run alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.clustering.normalize import (
    http_statuses_in,
    normalize_message,
    normalize_url,
    url_parts,
)
from domain.sources import compact_json, final_answer_part
from domain.transcripts import TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock, Transcript
from domain.vocabulary import FAILING

FAILING_STATUSES = FAILING

# How many of the run's last distinct tool errors make its fingerprint: the failure that ended
# a run is near its end, and earlier errors the agent recovered from are noise.
LAST_ERRORS = 3
# Longest excerpt of a tool result kept as the error's text.
MAX_EXCERPT = 400
MAX_FINAL_ANSWER = 300

# A tool result not flagged `is_error` still counts when its text says it failed.
_LOOKS_FAILED = re.compile(
    r"\bHTTP/\d(?:\.\d)?\s+[45]\d\d\b|\b[45]\d\d\s+(?:Unauthori[sz]ed|Forbidden|Not Found"
    r"|Bad Request|Too Many Requests|Internal Server Error|Bad Gateway|Service Unavailable)\b"
    r"|Traceback \(most recent call last\)|^\s*[\w.]*(?:Error|Exception)\b:|\btimed out\b"
    r"|\bcommand not found\b|\bpermission denied\b",
    re.IGNORECASE | re.MULTILINE,
)
_ERROR_LINE = re.compile(
    r"(?:Error|Exception|error:|fatal|failed|denied|refused|timed out|timeout|not found"
    r"|\b[45]\d\d\b)",
    re.IGNORECASE,
)
_EXCEPTION_NAME = re.compile(
    r"\b(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Timeout|Failure|Fault))\b"
)
_TIMEOUT = re.compile(
    r"\btimed?[\s-]?out\b|\btimeout\b|\bdeadline exceeded\b|\bno response\b", re.IGNORECASE
)
# Connection errors name their host as an argument: HTTPSConnectionPool(host='pypi.org', …).
_HOST_ARGUMENT = re.compile(r"\bhost=['\"]?([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_URL = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>`()\[\]{}\\|]+")
_GAVE_UP = re.compile(
    r"\b(?:could not|couldn't|cannot|can't|unable to|not able to|give up|giving up|gave up"
    r"|workaround|by hand|manually|not possible|no way to)\b",
    re.IGNORECASE,
)
_DOCS_GAP = re.compile(
    r"\b(?:docs?|documentation|quickstart|guides?|reference)\b[^.\n]{0,40}?"
    r"\b(?:do(?:es)?(?: not|n't)|never|nowhere)\b[^.\n]{0,20}?"
    r"\b(?:say|mention|explain|cover|show|document|describe|list|tell)s?\b"
    r"|\b(?:not|isn't|is not|aren't|are not) documented\b|\bundocumented\b"
    r"|\b(?:missing|absent) (?:from|in) the (?:docs|documentation|quickstart)\b"
    r"|\bno (?:docs|documentation) (?:for|on|about)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FailingRun:
    """What clustering needs of one run that ended failed, errored or timed_out."""

    run_id: str
    task_id: str
    environment_id: str
    status: str  # failed | errored | timed_out
    termination_reason: str | None
    error: str | None  # the runner's error message, if any
    transcript: Transcript | None  # None when the run produced none
    fired_signals: tuple[str, ...] = ()  # boolean signals that were true, counts > 0
    # Names read better than ids in explanations; ids are used when names are not given.
    task_name: str | None = None
    environment_name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolError:
    """One error a run met: where (message index; None for the runner's error), from which
    tool and call (rendered as `tool input values`), its text as recorded (an excerpt) and its
    fingerprint."""

    event: int | None
    tool: str | None
    call: str | None
    text: str
    message: str


@dataclass(frozen=True, slots=True)
class Signature:
    """A failing run's fingerprint: what the cause rules read."""

    status: str
    termination_reason: str | None
    errors: tuple[ToolError, ...]  # last distinct tool errors, oldest first; runner's last
    http_statuses: tuple[int, ...]
    error_kinds: tuple[str, ...]  # exception names, plus "Timeout" when something timed out
    hosts: tuple[str, ...]  # hosts of URLs in the errors and in the failing calls
    urls: tuple[str, ...]  # host + path (raw, no query) of those URLs, for fixes
    routes: tuple[str, ...]  # the same, normalised: variable segments are <id>
    unanswered: ToolError | None  # the tool call the run ended waiting on (text = the call)
    final_answer: str  # normalised
    final_event: int | None
    final_text: str  # as written, for evidence
    gave_up: bool  # the final answer gives up or proposes a workaround
    docs_gap: bool  # the agent said the docs do not explain what it needed
    read_docs: bool  # the agent used a docs tool (search/read docs)
    fired_signals: tuple[str, ...]
    # The docs call the agent repeated most (its rendering, its count), when any was repeated.
    repeated_read: tuple[str, int] | None = None
    tool_calls: int = 0


def failure_signature(run: FailingRun) -> Signature:
    """The signature of one failing run (pure: the same run gives the same signature)."""
    transcript = run.transcript
    tool_errors, unanswered = _read_tools(transcript) if transcript else ([], None)
    errors = _last_distinct(tool_errors, LAST_ERRORS)
    if run.error:
        excerpt = error_excerpt(run.error)
        errors.append(ToolError(None, None, None, excerpt, normalize_message(excerpt)))
    failing_inputs = [e.call for e in errors if e.call]
    url_sources = (
        [e.text for e in errors] + failing_inputs + [unanswered.text if unanswered else ""]
    )
    urls = sorted({"".join(url_parts(u)) for s in url_sources for u in _URL.findall(s)})
    hosts = sorted(
        {url_parts(u)[0] for s in url_sources for u in _URL.findall(s)}
        | {h.lower() for e in errors for h in _HOST_ARGUMENT.findall(e.text)}
    )
    routes = sorted(
        {normalize_url(u).partition("://")[2] for s in url_sources for u in _URL.findall(s)}
    )
    # Read from fingerprints: a quoted value ('timeout' as an argument name) is data.
    kinds = {m.group(1) for e in errors for m in _EXCEPTION_NAME.finditer(e.message)}
    if any(_TIMEOUT.search(e.message) for e in errors) or (
        unanswered is not None
        and (run.status == "timed_out" or run.termination_reason == "timeout")
    ):
        kinds.add("Timeout")
    final_event, final_text = final_answer_part(transcript) if transcript else (None, "")
    agent_text = _agent_text(transcript) if transcript else ""
    return Signature(
        status=run.status,
        termination_reason=run.termination_reason,
        errors=tuple(errors),
        http_statuses=http_statuses_in(e.message for e in errors),
        error_kinds=tuple(sorted(kinds)),
        hosts=tuple(hosts),
        urls=tuple(urls),
        routes=tuple(routes),
        unanswered=unanswered,
        final_answer=normalize_message(final_text[:MAX_FINAL_ANSWER]),
        final_event=final_event,
        final_text=final_text,
        gave_up=bool(_GAVE_UP.search(final_text)),
        docs_gap=bool(_DOCS_GAP.search(agent_text)),
        read_docs=transcript is not None and _used_docs_tool(transcript),
        fired_signals=tuple(sorted(set(run.fired_signals))),
        repeated_read=_repeated_read(transcript) if transcript else None,
        tool_calls=_tool_calls(transcript) if transcript else 0,
    )


def error_excerpt(text: str) -> str:
    """The part of a tool's output that says what failed, at most `MAX_EXCERPT` characters.

    A traceback is its final exception line; a long output its last lines that read like
    errors (else its last lines): installers and test runners print pages before the error."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if "Traceback (most recent call last)" in text:
        exceptions = [line for line in lines if _EXCEPTION_NAME.match(line)]
        picked = exceptions[-1:] or lines[-1:]
    elif len(text) <= MAX_EXCERPT:
        picked = lines
    else:
        picked = [line for line in lines if _ERROR_LINE.search(line)][-2:] or lines[-2:]
    return " ".join(" ".join(picked).split())[:MAX_EXCERPT]


def _read_tools(transcript: Transcript) -> tuple[list[ToolError], ToolError | None]:
    """Tool errors in order, and the last tool call that never got a result."""
    pending: dict[str, tuple[int, str, str]] = {}  # call id -> (event, tool name, rendering)
    errors: list[ToolError] = []
    last_result = -1
    for index, message in enumerate(transcript.messages):
        for position, block in enumerate(message.content):
            if isinstance(block, ToolCallBlock):
                rendered = f"{block.name} {_input_text(block.input)}"[:MAX_EXCERPT]
                pending[block.id or f"#{index}.{position}"] = (index, block.name, rendered)
            elif isinstance(block, ToolResultBlock):
                last_result = index
                # A result without a call id answers the most recent open call.
                call_id = block.tool_call_id or next(reversed(pending), "")
                call = pending.pop(call_id, None)
                # A docs page that quotes an error ("a 401 means ...") is content, not a
                # failure: a docs tool's output counts only when the tool flagged it.
                quoting = call is not None and is_docs_tool(call[1])
                if not (block.is_error or (not quoting and _LOOKS_FAILED.search(block.content))):
                    continue
                excerpt = error_excerpt(block.content)
                errors.append(
                    ToolError(
                        index,
                        call[1] if call else None,
                        call[2] if call else None,
                        excerpt,
                        normalize_message(excerpt),
                    )
                )
    unanswered = None
    if pending:
        event, tool, rendered = max(pending.values())
        # Only a call after the last result is what the run ended waiting on; an earlier one
        # without a result is a gap in the record.
        if event > last_result:
            unanswered = ToolError(event, tool, rendered, rendered, normalize_message(rendered))
    return errors, unanswered


def _input_text(value: Any) -> str:
    """A tool call's input as text: its values, not JSON, so that a command's URL is read as a
    URL rather than stripped as a quoted value."""
    if isinstance(value, dict):
        return " ".join(_input_text(item) for item in value.values())
    if isinstance(value, list | tuple):
        return " ".join(_input_text(item) for item in value)
    return value if isinstance(value, str) else compact_json(value)


def _last_distinct(errors: list[ToolError], limit: int) -> list[ToolError]:
    """The last `limit` errors with distinct fingerprints, oldest first: an agent that repeats
    one failing call ten times has met one error, not ten."""
    seen: set[str] = set()
    picked: list[ToolError] = []
    for error in reversed(errors):
        if error.message in seen:
            continue
        seen.add(error.message)
        picked.append(error)
        if len(picked) == limit:
            break
    return picked[::-1]


def _agent_text(transcript: Transcript) -> str:
    parts = [
        block.text if isinstance(block, TextBlock) else block.thinking
        for message in transcript.messages
        if message.role == "assistant"
        for block in message.content
        if isinstance(block, TextBlock | ThinkingBlock)
    ]
    if transcript.final_answer:
        parts.append(transcript.final_answer)
    return "\n".join(parts)


def is_docs_tool(name: str) -> bool:
    """A tool that reads or searches documentation (read_doc, search_docs, fetch_docs)."""
    return "doc" in name.lower()


def _calls(transcript: Transcript) -> list[ToolCallBlock]:
    return [
        block
        for message in transcript.messages
        for block in message.content
        if isinstance(block, ToolCallBlock)
    ]


def _used_docs_tool(transcript: Transcript) -> bool:
    return any(is_docs_tool(call.name) for call in _calls(transcript))


def _tool_calls(transcript: Transcript) -> int:
    return len(_calls(transcript))


def _repeated_read(transcript: Transcript) -> tuple[str, int] | None:
    """The docs call made most often with the same input (ties: the later one), if twice or
    more: an agent that re-reads one page is looking for what the page does not say."""
    counts: dict[str, int] = {}
    for call in _calls(transcript):
        if is_docs_tool(call.name):
            rendered = f"{call.name} {_input_text(call.input)}"[:MAX_EXCERPT]
            counts[rendered] = counts.pop(rendered, 0) + 1  # re-inserted: latest last
    if not counts:
        return None
    best = max(counts.values())
    if best < 2:
        return None
    rendered = [text for text, n in counts.items() if n == best][-1]
    return rendered, best
