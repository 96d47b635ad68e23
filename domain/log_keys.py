"""Keys of recorded logs: which task and which environment each imported transcript belongs
to, told by a small expression over where it was read (docs/cli.md, "Import keys").

    file          the file's name (`logs/refund.json` -> `refund.json`)
    file-stem     the file's name without its last extension (`refund`)
    path          the file's path as given
    dir           the name of the folder holding the file (`logs`)
    sample        the transcript's sample in its file (an Inspect sample id)
    model         the model the transcript records (its stats, else `metadata.model`)
    metadata.K    the metadata value K (dots go deeper: `metadata.scores.match`)
    =TEXT         TEXT itself, for every transcript

Any of them but `=TEXT` may end with `~REGEX`: the key is the regex's first group (or its
whole match when it has none), searched in the value (`file-stem~^(.+)__` takes `refund`
from `refund__gpt.json`). A key that a transcript lacks is an error naming the transcript.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from domain.errors import InvalidInput

SOURCES = ("file", "file-stem", "path", "dir", "sample", "model")
SYNTAX = "file, file-stem, path, dir, sample, model, metadata.KEY or =TEXT (then ~REGEX)"


@dataclass(frozen=True, slots=True)
class LogPlace:
    """What a key can read of one transcript: where it came from and what it records."""

    path: str
    sample: str | None
    model: str | None
    metadata: Mapping[str, Any]

    @property
    def label(self) -> str:
        return self.path + (f" (sample {self.sample})" if self.sample is not None else "")


@dataclass(frozen=True, slots=True)
class KeyExpression:
    source: str  # one of SOURCES, "metadata" or "literal"
    detail: str = ""  # the metadata path, or the literal text
    pattern: re.Pattern[str] | None = None
    text: str = ""  # as written

    def key(self, place: LogPlace, option: str) -> str:
        """This transcript's key, or InvalidInput naming the transcript and what it lacks."""
        if self.source == "literal":
            return self.detail
        value = self._value(place)
        if value is None or value == "":
            raise InvalidInput(
                f"{place.label}: {option} {self.text!r} finds no value in it",
                ((option, f"{place.label} has no {self.text.split('~')[0]}"),),
            )
        if self.pattern is None:
            return value
        found = self.pattern.search(value)
        if found is None:
            raise InvalidInput(
                f"{place.label}: {option} {self.text!r}: the pattern does not match {value!r}",
                ((option, f"does not match {value!r} of {place.label}"),),
            )
        return found.group(1) if self.pattern.groups else found.group(0)

    def _value(self, place: LogPlace) -> str | None:
        path = PurePath(place.path)
        if self.source == "file":
            return path.name
        if self.source == "file-stem":
            return path.stem
        if self.source == "path":
            return place.path
        if self.source == "dir":
            return path.parent.name or None
        if self.source == "sample":
            return place.sample
        if self.source == "model":
            return place.model or _text(place.metadata.get("model"))
        return _text(_dig(place.metadata, self.detail))


def parse_key(text: str, option: str) -> KeyExpression:
    """A key expression, or InvalidInput located at `option` saying what is allowed."""
    if text.startswith("="):
        if len(text) == 1:
            raise _invalid(option, text, "=TEXT needs a text after '='")
        return KeyExpression("literal", text[1:], None, text)
    base, tilde, regex = text.partition("~")
    pattern = None
    if tilde:
        try:
            pattern = re.compile(regex)
        except re.error as error:
            problem = f"the pattern is not a regular expression: {error}"
            raise _invalid(option, text, problem) from None
        if not regex:
            raise _invalid(option, text, "~ needs a pattern after it")
    if base in SOURCES:
        return KeyExpression(base, "", pattern, text)
    if base.startswith("metadata.") and all(base.removeprefix("metadata.").split(".")):
        return KeyExpression("metadata", base.removeprefix("metadata."), pattern, text)
    raise _invalid(option, text, f"expected {SYNTAX}")


def _invalid(option: str, text: str, problem: str) -> InvalidInput:
    return InvalidInput(f"{option} {text!r}: {problem}", ((option, problem),))


def _dig(metadata: Mapping[str, Any], dotted: str) -> Any:
    value: Any = metadata
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str | None:
    """A metadata value as a key: text as it is, numbers and booleans as JSON writes them;
    objects and lists name nothing."""
    if value is None or isinstance(value, dict | list):
        return None
    return value if isinstance(value, str) else json.dumps(value)
