"""Text that every store can keep: no NUL character and no lone surrogate.

PostgreSQL's TEXT cannot hold U+0000, and a lone surrogate (U+D800–U+DFFF unpaired) cannot be
encoded as UTF-8 at all: either, once in an event, breaks every view that copies it. Anything a
product sends is checked here before it is saved, with the location of each bad string, and
what an agent prints is cleaned (`clean_text`) rather than refused: its output is data, not a
request.
"""

from __future__ import annotations

import re
from typing import Any

from domain.errors import InvalidInput
from domain.problems import LocPart, format_loc

_UNSAFE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# Locations reported at most: a hostile document may hold millions of bad strings.
MAX_PROBLEMS = 20


def unsafe_reason(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSAFE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain the NUL character (U+0000)"
    return f"must not contain a lone surrogate (U+{ord(found.group()):04X})"


def unsafe_text_problems(value: Any, root: tuple[LocPart, ...] = ()) -> list[tuple[str, str]]:
    """Every string in a JSON-like value (keys included) that cannot be stored, located.
    Walks iteratively, each item linked to its parent (a location is spelt out only for a
    bad string): a deeply nested document can neither exhaust the stack nor cost quadratic
    time."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[_Loc, Any]] = [(_Loc(None, root), value)]
    while stack and len(problems) < MAX_PROBLEMS:
        loc, item = stack.pop()
        if isinstance(item, str):
            reason = unsafe_reason(item)
            if reason is not None:
                problems.append((loc.spelt(), reason))
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                here = _Loc(loc, (str(key),))
                if isinstance(key, str) and (reason := unsafe_reason(key)) is not None:
                    problems.append((here.spelt(), f"key {reason}"))
                stack.append((here, child))
        elif isinstance(item, list | tuple):
            stack.extend((_Loc(loc, (i,)), child) for i, child in reversed(list(enumerate(item))))
    return problems


class _Loc:
    __slots__ = ("parent", "parts")

    def __init__(self, parent: _Loc | None, parts: tuple[LocPart, ...]) -> None:
        self.parent = parent
        self.parts = parts

    def spelt(self) -> str:
        chain: list[tuple[LocPart, ...]] = []
        node: _Loc | None = self
        while node is not None:
            chain.append(node.parts)
            node = node.parent
        return format_loc(part for parts in reversed(chain) for part in parts)


def require_safe_text(value: Any, what: str = "the request") -> None:
    """Raise `InvalidInput` (422) naming every bad string's location."""
    problems = unsafe_text_problems(value)
    if problems:
        summary = "; ".join(f"{loc or '(body)'}: {message}" for loc, message in problems[:3])
        raise InvalidInput(f"{what} holds text that cannot be stored: {summary}", tuple(problems))


def clean_text(text: str) -> str:
    """`text` with each NUL and lone surrogate replaced by U+FFFD (for agent output)."""
    return _UNSAFE.sub(REPLACEMENT, text) if _UNSAFE.search(text) else text


def clean_value(value: Any) -> Any:
    """A JSON-like value with `clean_text` applied to every string (keys included), for agent
    output; `value` itself when nothing needed cleaning (the usual case: one scan, no copy)."""
    return _cleaned(value) if _holds_unsafe_text(value) else value


def _holds_unsafe_text(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSAFE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cleaned(item) for item in value)
    return value
