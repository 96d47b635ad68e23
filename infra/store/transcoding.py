"""The event store's transcoder: eventsourcing's JSON transcoder that refuses text a store
cannot keep (`domain.safe_text`), so every save is checked however it was reached.

The check rides on the encoding every save does anyway: a NUL character is always escaped in
JSON (`\\u0000`), so one substring search of the encoded text finds it; a lone surrogate cannot
be encoded as UTF-8 at all, so the encoding itself fails on it. Only then is the event's state
walked, to name where each bad string is (a literal backslash before `u0000` is a false alarm
that this walk clears).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder

from domain.errors import InvalidInput
from domain.safe_text import unsafe_text_problems

_ESCAPED_NUL = "\\u0000"


class SafeTextTranscoder(JSONTranscoder):
    """Encodes an event's state, or raises `InvalidInput` naming each string no store can hold
    (located in the event's payload, e.g. `definition.name`)."""

    def encode(self, obj: Any) -> bytes:
        text = self.encoder.encode(obj)
        try:
            encoded = text.encode("utf8")
        except UnicodeEncodeError:
            _refuse(obj)
            raise
        if _ESCAPED_NUL in text:
            _refuse(obj)
        return encoded


def _refuse(state: Any) -> None:
    problems = unsafe_text_problems(state)
    if problems:
        summary = "; ".join(f"{loc}: {message}" for loc, message in problems[:3])
        raise InvalidInput(f"text that cannot be stored: {summary}", tuple(problems))
