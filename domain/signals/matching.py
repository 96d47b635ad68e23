"""Regex matching for pattern signals, on a linear-time engine.

User regexes run on RE2 (google-re2), which never backtracks: `(a+)+$` over a megabyte takes
linear time instead of forever, so a hostile pattern cannot stall extraction. Matching is done
on UTF-8 bytes, where RE2 is 5-10x faster than on `str`; offsets are mapped back to text only
for the snippets kept as evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import re2

SNIPPET_CHARS = 200
# RE2 reports `\1` as an invalid escape; say why it is unsupported.
_BACKREFERENCE = re.compile(r"invalid escape sequence: \\[1-9]|backreference")
_MAX_PROGRAM_BYTES = 64 << 20


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


@dataclass(frozen=True, slots=True)
class Match:
    start: int
    end: int


def search(compiled: Any, data: bytes, pos: int = 0) -> Match | None:
    found = compiled.search(data, pos)
    return None if found is None else Match(*found.span())


def count(compiled: Any, data: bytes) -> int:
    """The number of non-overlapping matches."""
    return sum(1 for _ in compiled.finditer(data))


def snippet(data: bytes, start: int, end: int, lo: int = 0, hi: int | None = None) -> str:
    """At most 200 characters of text around `data[start:end]`, within `data[lo:hi]`."""
    hi = len(data) if hi is None else hi
    found = data[start:end].decode("utf-8", "replace")
    if len(found) >= SNIPPET_CHARS:
        return found[:SNIPPET_CHARS]
    room = SNIPPET_CHARS - len(found)
    # Read `room` bytes each side: exact for ASCII, a little less context for wider text,
    # and never more than 200 characters in all.
    before = data[max(lo, start - room) : start].decode("utf-8", "ignore")
    after = data[end : min(hi, end + room)].decode("utf-8", "ignore")
    take_before = min(len(before), max(room // 2, room - len(after)))
    take_after = min(len(after), room - take_before)
    return (before[len(before) - take_before :] if take_before else "") + found + after[:take_after]
