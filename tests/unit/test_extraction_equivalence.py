"""The optimised pattern extraction equals a plain reference implementation, byte for byte.

`Extractor` renders each text once, searches all the messages of a role at once when that
cannot change a result, calls RE2 below its Python wrapper and cuts ASCII snippets in one
slice. The reference below does none of that: it reads each message's text with
`domain.sources.message_text`, each run source with `source_parts`, and matches with
google-re2's public `search` / `finditer` (docs/spec.md §3.1, §4.4, §4.5). Hypothesis generates the
transcripts (empty texts, unicode, newlines, fences, tool calls) and the configs (anchors,
multi-line and dot-all flags, empty matches, matches across the newlines that join parts,
`ignore_case`, every source, scope and fold), and every value and piece of evidence must be
equal.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain.signals import matching
from domain.signals.config import SignalConfig
from domain.signals.extraction import MAX_EVIDENCE, Extractor
from domain.signals.folds import _fold, fold
from domain.signals.matching import (
    JoinedText,
    Matcher,
    compile_regex,
    literal_text,
    uses_text_anchors,
)
from domain.signals.validation import validate_signal_config
from domain.sources import (
    MESSAGE_SOURCES,
    SOURCES,
    code_bodies,
    encode_sources,
    final_answer_part,
    message_text,
    source_parts,
)
from domain.stats import derive_stats
from domain.transcripts import Transcript, transcript_from_object

# -- the reference ----------------------------------------------------------------------------


def reference_snippet(data: bytes, start: int, end: int, lo: int = 0, hi: int | None = None) -> str:
    hi = len(data) if hi is None else hi
    found = data[start:end].decode("utf-8", "replace")
    if len(found) >= 200:
        return found[:200]
    room = 200 - len(found)
    before = data[max(lo, start - room) : start].decode("utf-8", "ignore")
    after = data[end : min(hi, end + room)].decode("utf-8", "ignore")
    take_before = min(len(before), max(room // 2, room - len(after)))
    take_after = min(len(after), room - take_before)
    return (before[len(before) - take_before :] if take_before else "") + found + after[:take_after]


def reference_value(signal: Any, transcript: Transcript) -> dict[str, Any]:
    extract = signal.extract
    specs = [(p.name, p.regex) for p in extract.patterns or []] or [(None, extract.needle)]
    regexes = [(name, compile_regex(regex, extract.ignore_case)) for name, regex in specs]
    counting = extract.needle is not None
    try:
        if signal.scope == "message":
            return _reference_messages(signal, transcript, regexes, counting)
        return _reference_run(signal, transcript, regexes, counting)
    except Exception as error:
        message = f"extraction failed: {type(error).__name__}: {error}"
        return {"value": None, "evidence": [], "error": message}


def _reference_messages(
    signal: Any, transcript: Transcript, regexes: list[tuple[Any, Any]], counting: bool
) -> dict[str, Any]:
    observations: list[Any] = []
    evidence: list[dict[str, Any]] = []
    for index, message in enumerate(transcript.messages):
        if message.role != signal.target_role:
            continue
        data = message_text(message, signal.effective_source).encode("utf-8")
        hits, first = 0, None
        for name, compiled in regexes:
            spans = [m.span() for m in compiled.finditer(data)] if counting else []
            match = compiled.search(data)
            if match is None:
                continue
            first = first or (name, match.span())
            if not counting:
                break
            hits += len(spans)
        observations.append(hits if counting else first is not None)
        if first is not None and len(evidence) < MAX_EVIDENCE:
            name, (start, end) = first
            evidence.append(_evidence(index, reference_snippet(data, start, end), name))
    return {"value": fold(signal.fold.fn, observations), "evidence": evidence}


def _reference_run(
    signal: Any, transcript: Transcript, regexes: list[tuple[Any, Any]], counting: bool
) -> dict[str, Any]:
    source = signal.effective_source or "any"
    parts = (
        [final_answer_part(transcript)]
        if source == "finalAnswer"
        else source_parts(transcript, source)
    )
    encoded = [text.encode("utf-8") for _, text in parts]
    data = b"\n".join(encoded)
    starts = [sum(len(e) + 1 for e in encoded[:i]) for i in range(len(encoded))]

    def part_end(part: int) -> int:
        return starts[part + 1] - 1 if part + 1 < len(starts) else len(data)

    def part_at(offset: int) -> int:
        part = max(bisect_right(starts, offset) - 1, 0)
        return part + 1 if offset == part_end(part) and part + 1 < len(starts) else part

    def first_per_part(compiled: Any) -> list[tuple[int, int]]:
        out, pos = [], 0
        while pos <= len(data):
            match = compiled.search(data, pos)
            if match is None:
                break
            out.append(match.span())
            pos = max(part_end(part_at(match.start())) + 1, match.end(), pos + 1)
        return out

    total = 0
    evidence: list[tuple[int | None, str, str | None]] = []
    seen: set[int | None] = set()
    for name, compiled in regexes:
        spans = (
            [m.span() for m in compiled.finditer(data)] if counting else first_per_part(compiled)
        )
        total += len(spans)
        for start, end in spans:
            if len(evidence) == MAX_EVIDENCE or not parts:
                break  # (no parts: an empty match in the empty text, in no message)
            part = part_at(start)
            if parts[part][0] not in seen:
                seen.add(parts[part][0])
                text = reference_snippet(data, start, end, starts[part], part_end(part))
                evidence.append((parts[part][0], text, name))
    evidence.sort(key=lambda e: (-1 if e[0] is None else e[0], e[1]))
    return {
        "value": total if counting else total > 0,
        "evidence": [_evidence(event, text, name) for event, text, name in evidence],
    }


def _evidence(event: int | None, snippet: str, pattern: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"event": event, "snippet": snippet}
    if pattern is not None:
        out["pattern"] = pattern
    return out


# -- generated transcripts and configs ---------------------------------------------------------

# Few characters, so that patterns over them match often: word and non-word ASCII, newlines
# (inside parts, next to the newlines that join them), two- and three-byte UTF-8, backticks.
CHARS = st.sampled_from(["a", "a", "b", "A", " ", "\n", "\n", "_", "1", "é", "日", "`", "."])
TEXT = st.one_of(
    st.text(CHARS, max_size=12),
    st.builds(
        lambda a, b: f"{a}\n```py\n{b}\n```\n",
        st.text(CHARS, max_size=6),
        st.text(CHARS, max_size=6),
    ),
)
BLOCK = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, TEXT),
    st.builds(lambda t: {"type": "thinking", "thinking": t}, TEXT),
    st.builds(
        lambda name, value: {"type": "tool_call", "name": name, "input": {"q": value}},
        st.sampled_from(["a", "shell", "é"]),
        TEXT,
    ),
    st.builds(lambda t: {"type": "tool_result", "content": t}, TEXT),
)
MESSAGE = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["system", "user", "assistant", "tool"]),
    st.one_of(TEXT, st.lists(BLOCK, max_size=3)),
)
TRANSCRIPT = st.builds(
    lambda messages, final: transcript_from_object(
        {"messages": messages, **({} if final is None else {"final_answer": final})}
    ),
    st.lists(MESSAGE, max_size=12) | st.lists(MESSAGE, min_size=26, max_size=40),
    st.none() | TEXT,
)

ROLES = ["system", "user", "assistant", "tool"]

# Atoms chosen for what differs between a part on its own and parts joined with newlines.
ATOMS = [
    "a",
    "b",
    "A",
    "é",
    "日",
    "\\n",
    ".",
    "\\s",
    "\\w",
    "\\W",
    "[^a]",
    "[ab]",
    "[^]a]",
    "[\\n]",
    "\\pL",
    "\\C",
    "`",
    "\\b",
    "\\B",
    "^",
    "$",
    "\\A",
    "\\z",
    "(?m:^)",
    "(?m:$)",
    "(?s:.)",
    "\\.",
    "\\ ",
    "\\-",
    "\\`",
    "\\Q^\\E",
    "[$^]",
]
ATOM = st.sampled_from(ATOMS)
REGEX = st.recursive(
    ATOM,
    lambda inner: st.one_of(
        st.builds(lambda a, b: a + b, inner, inner),
        st.builds(lambda a, b: f"{a}|{b}", inner, inner),
        st.builds(lambda a, op: f"(?:{a}){op}", inner, st.sampled_from(["*", "+", "?", "{2}"])),
        st.builds(lambda a: f"({a})", inner),
    ),
    max_leaves=5,
).map(str) | st.builds(
    lambda flags, r: flags + r, st.sampled_from(["(?m)", "(?s)", "(?i)", "(?m-s)"]), ATOM
)


@st.composite
def pattern_signals(draw: Any) -> dict[str, Any]:
    counting = draw(st.booleans())
    extract: dict[str, Any] = {"method": "pattern", "ignore_case": draw(st.booleans())}
    if counting:
        extract["needle"] = draw(REGEX)
    else:
        regexes = draw(st.lists(REGEX, min_size=1, max_size=3))
        extract["patterns"] = [{"name": f"p{i}", "regex": r} for i, r in enumerate(regexes)]
    signal: dict[str, Any] = {
        "id": "s",
        "name": "S",
        "type": "number" if counting else "boolean",
        "extract": extract,
    }
    if draw(st.booleans()):
        signal["scope"] = "message"
        signal["target_role"] = draw(st.sampled_from(["assistant", "user", "tool"]))
        signal["fold"] = {
            "fn": draw(st.sampled_from(["sum", "count", "average", "min", "max", "histogram"]))
        }
        source = draw(st.none() | st.sampled_from(MESSAGE_SOURCES))
    else:
        source = draw(st.sampled_from(SOURCES))
    if source is not None:
        signal["source"] = source
    return signal


def _config(signal: dict[str, Any]) -> SignalConfig:
    return validate_signal_config({"version": 1, "signals": [signal]}).require_valid()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TRANSCRIPT, pattern_signals())
def test_extraction_equals_the_reference(transcript: Transcript, signal: dict[str, Any]) -> None:
    report = validate_signal_config({"version": 1, "signals": [signal]})
    assume(report.valid)  # e.g. a regex RE2 refuses
    config = report.require_valid()
    (parsed,) = config.signals
    value = Extractor(config).extract(transcript, derive_stats(transcript))["s"]
    assert value.to_json() == reference_value(parsed, transcript)


@pytest.mark.parametrize(
    ("regex", "needle"),
    [
        ("a", True),
        ("\\ba\\b", True),
        ("(?m)^a|b$", False),
        ("a\\nb", True),  # matches across the newline joining two messages
        ("a*", True),  # empty matches
        ("^a", False),
        ("a$", True),
    ],
)
def test_many_matching_messages_cap_the_evidence_like_the_reference(
    regex: str, needle: bool
) -> None:
    texts = ["a", "b a\na", "", "ab", "a\nb", "é a"] * 10
    transcript = transcript_from_object(
        {"messages": [{"role": "assistant", "content": text} for text in texts]}
    )
    extract = {
        "method": "pattern",
        **({"needle": regex} if needle else {"patterns": [{"name": "p", "regex": regex}]}),
    }
    signal = {
        "id": "s",
        "name": "S",
        "type": "number" if needle else "boolean",
        "scope": "message",
        "target_role": "assistant",
        "fold": {"fn": "sum"},
        "extract": extract,
    }
    config = _config(signal)
    value = Extractor(config).extract(transcript, derive_stats(transcript))["s"]
    assert value.to_json() == reference_value(config.signals[0], transcript)
    assert len(value.evidence) <= MAX_EVIDENCE


# -- the pieces -----------------------------------------------------------------------------


@given(st.binary(max_size=40) | st.text(CHARS, max_size=300).map(str.encode), st.data())
def test_snippets_equal_the_reference_cut(data: bytes, draw: Any) -> None:
    start = draw.draw(st.integers(0, len(data)))
    end = draw.draw(st.integers(start, len(data)))
    lo = draw.draw(st.integers(0, len(data)))
    hi = draw.draw(st.integers(lo, len(data)))
    assert matching.snippet(data, start, end, lo, hi) == reference_snippet(data, start, end, lo, hi)
    assert matching.snippet(data, start, end) == reference_snippet(data, start, end)


ASCII = st.sampled_from("ab \n")


@given(
    st.lists(
        st.text(CHARS, max_size=500)
        | st.text(st.sampled_from("ab \n"), min_size=150, max_size=700),
        min_size=1,
        max_size=4,
    ),
    st.data(),
)
def test_snippets_inside_joined_parts_equal_the_reference_cut(parts: list[str], draw: Any) -> None:
    # Long matches and long parts: the 200-character room on either side, and part bounds.
    text = JoinedText(list(range(len(parts))), [part.encode() for part in parts])
    start = draw.draw(st.integers(0, len(text.data)))
    end = draw.draw(st.integers(start, min(len(text.data), start + 400)))
    part = max(bisect_right(text.starts, start) - 1, 0)
    if start == text.ends[part] and part + 1 < len(text.starts):
        part += 1
    lo, hi = text.starts[part], text.ends[part]
    expected = reference_snippet(text.data, start, end, lo, hi)
    assert matching.snippet(text.data, start, end, lo, hi) == expected


class _PublicOnly:
    """A compiled regex offering only google-re2's public API (as if it moved `Match`)."""

    def __init__(self, compiled: Any) -> None:
        self.search, self.finditer = compiled.search, compiled.finditer


@given(REGEX, st.text(CHARS, max_size=30), st.booleans())
def test_matcher_reports_what_the_public_api_does(regex: str, text: str, ignore_case: bool) -> None:
    try:
        compiled = compile_regex(regex, ignore_case)
    except matching.RegexError:
        assume(False)
    data = text.encode()
    expected_spans = [m.span() for m in compiled.finditer(data)]
    for matcher in (
        Matcher(compiled),
        Matcher(compiled, literal_text(regex, ignore_case)),  # bytes.find, if a plain string
        Matcher(_PublicOnly(compiled)),
    ):
        assert matcher.spans(data) == expected_spans
        for pos in range(len(data) + 1):
            found = compiled.search(data, pos)
            assert matcher.first(data, pos) == (None if found is None else found.span())


@pytest.mark.parametrize(
    ("regex", "anchored"),
    [
        ("a", False),
        ("\\ba\\b", False),
        ("[^a]+", False),
        ("[]^]", False),
        ("[^]$]", False),
        ("\\$5|\\^", False),
        ("(?m)^a$", False),
        ("(?mi)^a", False),
        ("(?im)^a", False),
        ("^a", True),
        ("a$", True),
        ("\\Aa", True),
        ("a\\z", True),
        ("[a]^", True),
        ("(?m:^a)|^b", True),  # the flag ends with its group
        ("(?m)^a(?-m:$)", True),
        ("(?i)^a", True),
        ("\\Q[\\E^", True),  # quoted text is not read: assumed anchored
        ("a\\\\^", True),
        ("[[:alpha:]^]", True),  # read conservatively
    ],
)
def test_text_anchors_are_found(regex: str, anchored: bool) -> None:
    compile_regex(regex)
    assert uses_text_anchors(regex) is anchored


@given(
    st.sampled_from(["sum", "count", "average", "min", "max", "histogram"]),
    st.lists(
        st.one_of(
            st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 1.5, float("nan")])
        ),
        max_size=12,
    )
    | st.lists(st.booleans(), max_size=12)
    | st.lists(st.integers(-3, 3), max_size=12),
)
def test_folds_of_numbers_take_a_shortcut_to_the_same_result(
    fn: str, values: list[bool | int | float]
) -> None:
    # `fold` skips a call per observation when all are numbers; `_fold` is the definition.
    expected = _fold(fn, values)
    got = fold(fn, values)
    assert json.dumps(got) == json.dumps(expected)
    assert type(got) is type(expected)


@settings(max_examples=150, deadline=None)
@given(TRANSCRIPT)
def test_sources_encoded_in_one_pass_are_the_defined_texts(transcript: Transcript) -> None:
    runs = [source for source in SOURCES if source != "finalAnswer"]
    keys = [(role, source) for role in ROLES for source in (None, *MESSAGE_SOURCES)]
    encoded_runs, encoded_messages = encode_sources(transcript, runs, keys)
    for name in runs:
        defined = source_parts(transcript, name)
        assert encoded_runs[name] == (
            [event for event, _ in defined],
            [text.encode() for _, text in defined],
        )
    for role, source in keys:
        events, encoded = encoded_messages[role, source]
        assert list(zip(events, encoded, strict=True)) == [
            (index, message_text(message, source).encode())
            for index, message in enumerate(transcript.messages)
            if message.role == role
        ]


# What `code_bodies` finds, as a regex (Python's engine: the lazy body is tried at every
# character, which is why `code_bodies` jumps from fence to fence instead).
FENCED_CODE = re.compile(r"(?ms)^[ \t]*(`{3,})[^\n`]*\n(.*?)^[ \t]*\1[ \t]*$")
FENCED = st.lists(
    st.sampled_from(["```", "````", "```py", " ```", "\t```", "\n", "a", " ", "`", "```\n"]),
    max_size=14,
).map("".join)


@given(FENCED | st.text(st.sampled_from("`\n a\t"), max_size=30))
def test_code_bodies_start_at_the_first_fence_with_the_same_result(text: str) -> None:
    expected = [match.group(2).removesuffix("\n") for match in FENCED_CODE.finditer(text)]
    assert code_bodies(text) == expected
