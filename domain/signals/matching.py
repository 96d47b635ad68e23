"""Regex matching for pattern signals, on a linear-time engine.

User regexes run on RE2 (google-re2), which never backtracks: `(a+)+$` over a megabyte takes
linear time instead of forever, so a hostile pattern cannot stall extraction. Matching is done
on UTF-8 bytes, where RE2 is 5-10x faster than on `str`; offsets are mapped back to text only
for the snippets kept as evidence.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

import re2

SNIPPET_CHARS = 200
# RE2 reports `\1` as an invalid escape; say why it is unsupported.
_BACKREFERENCE = re.compile(r"invalid escape sequence: \\[1-9]|backreference")
_MAX_PROGRAM_BYTES = 64 << 20
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)

Span = tuple[int, int]


class RegexError(ValueError):
    """A regex RE2 cannot compile; the message says why in the user's terms."""


def compile_regex(regex: str, ignore_case: bool = False) -> Any:
    """Compile `regex` for matching UTF-8 bytes; raise `RegexError` with RE2's reason."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    options.max_mem = _MAX_PROGRAM_BYTES
    try:
        return re2.compile(regex.encode("utf-8"), options)
    except re2.error as error:
        reason = error.args[0] if error.args else str(error)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        hint = ""
        if "invalid perl operator" in str(reason) or _BACKREFERENCE.search(str(reason)):
            hint = " (RE2 has no lookaround or backreferences; they are what makes regexes slow)"
        raise RegexError(f"does not compile: {reason}{hint}") from None


# A regex that is a plain string (escaped punctuation allowed): found with `bytes.find`.
_LITERAL = re.compile(r"(?:[^\\.+*?()|\[\]{}^$]|\\[^0-9A-Za-z])+", re.DOTALL)


def literal_text(regex: str, ignore_case: bool = False) -> bytes | None:
    """The bytes `regex` matches if it is a plain string, else None. With `ignore_case` only
    strings without letters qualify (RE2 folds case beyond ASCII: `k` matches the Kelvin sign)."""
    if not _LITERAL.fullmatch(regex):
        return None
    text = re.sub(r"\\(.)", r"\1", regex, flags=re.DOTALL)
    if ignore_case and any(char.isalpha() or not char.isascii() for char in text):
        return None
    return text.encode("utf-8")


First = Callable[[bytes, int], Span | None]
Spans = Callable[[bytes], list[Span]]


class Matcher:
    """A compiled regex with the two searches extraction makes over UTF-8 bytes:

    - `first(data, pos)`: the first match at or after `pos` (assertions see the text before);
    - `spans(data)`: every match `finditer` reports, in order, non-overlapping (after an
      empty match the search moves on one byte).

    Both are plain functions made for this regex, so a call costs as little as it can: a
    plain string (`literal`, see `literal_text`) is searched with `bytes.find`, anything
    else with RE2's own `Match`, under google-re2's `search`/`finditer`, which add a
    generator and a match object to every call (about as much time again as RE2 itself on
    short texts)."""

    __slots__ = ("compiled", "first", "literal", "spans")

    def __init__(self, compiled: Any, literal: bytes | None = None) -> None:
        self.compiled = compiled
        self.literal = literal or None
        self.first: First
        self.spans: Spans
        if self.literal is not None:
            self.first, self.spans = _literal_searches(self.literal)
        else:
            self.first, self.spans = _regex_searches(compiled)


def _literal_searches(literal: bytes) -> tuple[First, Spans]:
    size = len(literal)

    def first(data: bytes, pos: int = 0) -> Span | None:
        start = data.find(literal, pos)
        return None if start < 0 else (start, start + size)

    def spans(data: bytes) -> list[Span]:
        out: list[Span] = []
        start = data.find(literal)
        while start >= 0:
            out.append((start, start + size))
            start = data.find(literal, start + size)
        return out

    return first, spans


def _regex_searches(compiled: Any) -> tuple[First, Spans]:
    match = getattr(getattr(compiled, "_regexp", None), "Match", None)
    if match is None or _UNANCHORED is None:  # a google-re2 that moved it: the public API

        def public_first(data: bytes, pos: int = 0) -> Span | None:
            found = compiled.search(data, pos)
            return None if found is None else found.span()

        def public_spans(data: bytes) -> list[Span]:
            return [found.span() for found in compiled.finditer(data)]

        return public_first, public_spans
    anchor = _UNANCHORED

    def first(data: bytes, pos: int = 0) -> Span | None:
        span = match(anchor, data, pos, len(data))[0]
        return None if span[0] < 0 else span

    def spans(data: bytes) -> list[Span]:
        out: list[Span] = []
        pos = 0
        end = len(data)
        while True:
            span = match(anchor, data, pos, end)[0]
            if span[0] < 0:
                return out
            out.append(span)
            if pos == end:
                return out
            pos = pos + 1 if span[1] == pos else span[1]

    return first, spans


class JoinedText:
    """Parts of text joined with newlines into one UTF-8 buffer (docs/spec.md §3.1): each part's
    event (message index) and bounds, `data[starts[i]:ends[i]] == parts[i]`."""

    __slots__ = ("data", "ends", "events", "parts", "starts")

    def __init__(self, events: Sequence[int | None], parts: Sequence[bytes]) -> None:
        self.events = events
        self.parts = parts
        self.data = b"\n".join(parts)
        self.starts: list[int] = []
        self.ends: list[int] = []
        start, end = self.starts.append, self.ends.append
        offset = 0
        for part in parts:
            start(offset)
            offset += len(part)
            end(offset)
            offset += 1  # the newline after it


# Per part: how many matches (for a boolean, 1 if any), and the first match of the first
# regex that matched the part: part -> (regex index, start, end) in the joined data.
PartScan = tuple[list[int], dict[int, tuple[int, int, int]]]


def scan_parts(matchers: Sequence[Matcher], text: JoinedText, counting: bool) -> PartScan:
    """Search each part on its own, as if it were the whole text: with `counting`, every
    match of the one matcher; else the first match of the first matcher that finds one."""
    hits = [0] * len(text.starts)
    firsts: dict[int, tuple[int, int, int]] = {}
    data = text.data
    for part, (lo, hi) in enumerate(zip(text.starts, text.ends, strict=True)):
        if counting:
            literal = matchers[0].literal
            if literal is not None:  # never across a join: count within the part's bounds
                hits[part] = found = data.count(literal, lo, hi)
                if found:
                    start = data.find(literal, lo, hi)
                    firsts[part] = (0, start, start + len(literal))
                continue
        own = data[lo:hi]
        for index, matcher in enumerate(matchers):
            if counting:
                spans = matcher.spans(own)
                first, found = (spans[0] if spans else None), len(spans)
            else:
                first, found = matcher.first(own, 0), 1
            if first is not None:
                firsts[part] = (index, lo + first[0], lo + first[1])
                hits[part] = found
                break
    return hits, firsts


def scan_joined(matchers: Sequence[Matcher], text: JoinedText, counting: bool) -> PartScan | None:
    """`scan_parts`, searching all parts at once; None when that might give another result.

    For regexes without text anchors (see `uses_text_anchors`) every assertion reads the
    newline that joins two parts as it reads the start or end of a text. So a span inside one
    part matches in the joined text exactly when it matches in the part alone, and the
    joined search finds each part's own matches, in order, for as long as every match it
    reports is non-empty and inside one part. The first that is not (a match across a join,
    an empty match) makes it give up, and the caller searches part by part."""
    data, starts, ends = text.data, text.starts, text.ends
    hits = [0] * len(starts)
    firsts: dict[int, tuple[int, int, int]] = {}
    if not starts:
        return hits, firsts  # no message of the role
    if counting:
        return _count_joined(matchers[0], text, hits, firsts)
    last = len(starts) - 1
    for index, matcher in enumerate(matchers):
        pos = 0
        while True:
            span = matcher.first(data, pos)
            if span is None:
                break
            start, end = span
            part = bisect_right(starts, start) - 1
            if end <= start or end > ends[part]:
                return None
            if part not in firsts:
                firsts[part] = (index, start, end)
                hits[part] = 1
            if part == last:
                break
            pos = starts[part + 1]  # one match per part is all a boolean needs
    return hits, firsts


def _count_joined(
    matcher: Matcher, text: JoinedText, hits: list[int], firsts: dict[int, tuple[int, int, int]]
) -> PartScan | None:
    """`scan_joined` of one counted regex: every match, each in its part."""
    data, starts, ends = text.data, text.starts, text.ends
    part = lo = hi = -1  # the part of the previous match, and its bounds
    for start, end in matcher.spans(data):
        if not lo <= start < hi:
            part = bisect_right(starts, start) - 1
            lo, hi = starts[part], ends[part]
            firsts[part] = (0, start, end)
        if end <= start or end > hi:
            return None
        hits[part] += 1
    return hits, firsts


def uses_text_anchors(regex: str) -> bool:
    """Whether `regex` may assert the start or end of the whole text (`\\A`, `\\z`, and `^`,
    `$` outside multi-line mode) — the only assertions that tell a text's own start or end
    from a newline that joins it to the next. Errs towards True: anything it cannot read
    for sure (quoted `\\Q…\\E` text, flags switched off inside the pattern) counts."""
    if "\\Q" in regex or re.search(r"\(\?[a-zA-Z]*-", regex):
        return True
    multiline = re.match(r"\(\?[a-zA-Z]*m[a-zA-Z]*\)", regex) is not None
    in_class = False
    i, n = 0, len(regex)
    while i < n:
        char = regex[i]
        if char == "\\":
            if regex[i + 1 : i + 2] in ("A", "z"):
                return True
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A leading `^` negates the class and a `]` right after it is a literal.
            i += 2 if regex[i + 1 : i + 2] == "^" else 1
            i += 1 if regex[i : i + 1] == "]" else 0
            continue
        elif char in "^$" and not multiline:
            return True
        i += 1
    return False


def snippet(data: bytes, start: int, end: int, lo: int = 0, hi: int | None = None) -> str:
    """At most 200 characters of text around `data[start:end]`, within `data[lo:hi]`."""
    if hi is None:
        hi = len(data)
    room = SNIPPET_CHARS - end + start
    if room > 0 and lo <= start and end <= hi:
        # ASCII (the common case): characters are bytes, so cut once and decode once.
        a = start - room if start - room > lo else lo
        b = end + room if end + room < hi else hi
        window = data[a:b]
        if window.isascii():
            before, after = start - a, b - end
            half = room // 2
            take_before = half if half > room - after else room - after
            if take_before > before:
                take_before = before
            take_after = room - take_before if room - take_before < after else after
            return window[before - take_before : end - a + take_after].decode("ascii")
    found = data[start:end].decode("utf-8", "replace")
    if len(found) >= SNIPPET_CHARS:
        return found[:SNIPPET_CHARS]
    room = SNIPPET_CHARS - len(found)
    # Read `room` bytes each side: exact for ASCII, a little less context for wider text,
    # and never more than 200 characters in all.
    before_text = data[max(lo, start - room) : start].decode("utf-8", "ignore")
    after_text = data[end : min(hi, end + room)].decode("utf-8", "ignore")
    take_before = min(len(before_text), max(room // 2, room - len(after_text)))
    take_after = min(len(after_text), room - take_before)
    head = before_text[len(before_text) - take_before :] if take_before else ""
    return head + found + after_text[:take_after]
