"""Located problems: `signals[1].fold: required for message-scoped signals`.

Validators in the domain report every problem they find as a `Problem` with a location path,
so users can fix a document in one pass. Pydantic errors are translated here into the same form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

LocPart = str | int


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a document: where it is and what is wrong."""

    loc: str
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}" if self.loc else self.message

    def to_json(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message}


def format_loc(parts: Iterable[LocPart]) -> str:
    """`("signals", 1, "fold")` -> `signals[1].fold`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def join_loc(prefix: str, *parts: LocPart) -> str:
    return format_loc([prefix, *parts]) if prefix else format_loc(parts)


def problems_from_pydantic(
    error: ValidationError, prefix: str = "", document: Any = None
) -> list[Problem]:
    """Turn pydantic's errors into located problems with messages a user can act on.

    Given the validated `document`, the tags pydantic adds for a discriminated union's member
    (`agent.llm.model`) are dropped too: they are the only parts that name no key of it.
    """
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for item in error.errors(include_url=False):
        parts = _visible_loc(item["loc"])
        if document is not None:
            parts = _written_loc(parts, document)
        loc = join_loc(prefix, *parts)
        message = _message(item)
        if (loc, message) not in seen:
            seen.add((loc, message))
            problems.append(Problem(loc, message))
    return problems


def _visible_loc(loc: Sequence[Any]) -> list[LocPart]:
    # Pydantic adds the tag of a discriminated-union member (`text`, `tool_call`) and
    # function-validator names to the location; users never wrote those.
    return [part for part in loc if isinstance(part, int) or not _is_internal(part)]


def _written_loc(parts: list[LocPart], document: Any) -> list[LocPart]:
    """`parts` without those that name no key of `document` on the way (union tags); the
    last part stays, as a missing field names no key either."""
    written: list[LocPart] = []
    node = document
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        if isinstance(node, dict) and isinstance(part, str) and part not in node and not last:
            continue  # a tag: the member is the same node
        written.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return written


def _is_internal(part: str) -> bool:
    return part in {"text", "thinking", "tool_call", "tool_result"} or "[" in part


def _message(item: Any) -> str:
    kind = item["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "union_tag_invalid":
        ctx = item.get("ctx", {})
        return (
            f"unknown {ctx.get('discriminator', 'type').strip(chr(39))} {ctx.get('tag')!r} "
            f"(expected one of {ctx.get('expected_tags')})"
        )
    if kind == "union_tag_not_found":
        return "required: a block needs a 'type'"
    if kind == "json_invalid":
        return f"not valid JSON: {item.get('ctx', {}).get('error', item['msg'])}"
    message = str(item["msg"])
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    if message.startswith("Input should be"):
        message = "must be" + message.removeprefix("Input should be")
    else:
        message = message[:1].lower() + message[1:]
    if kind in {"literal_error", "enum"} or kind.endswith("_type") or kind.endswith("_parsing"):
        message += f" (got {_short(item.get('input'))})"
    return message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
