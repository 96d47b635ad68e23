"""Reading what users hand to the server commands: definition files, signal configs, id lists
and paging options. Everything is checked locally first, so a bad file fails before any
request is sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from api.cli.output import current_output, plural
from api.cli.signal_commands import load_config_file, read_text
from domain.errors import InvalidInput, UnreadableDocument
from domain.problems import problems_from_pydantic
from domain.signals.validation import (
    InvalidSignalConfig,
    parse_yaml,
)

F = TypeVar("F", bound=Callable[..., Any])


def read_definition_file(path: Path, what: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping from a file; exit 2 when unreadable or not YAML."""
    try:
        data = parse_yaml(read_text(path))
    except UnreadableDocument as error:
        message = str(error)
        raise UnreadableDocument(
            message if message.startswith(f"cannot read {path}") else f"{path}: {message}"
        ) from None
    if data is None:  # an empty file: the check below names what is required
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{path}: a {what} file is a YAML mapping of its fields",
            (("", f"expected a mapping, got {type(data).__name__}"),),
        )
    return data


def check_definition(
    model: type[BaseModel], body: dict[str, Any], what: str, flags: dict[str, str]
) -> None:
    """Check a task or environment as the server will, before sending it: every problem at
    once (exit 1). `flags` maps a field to the option that also sets it, for the hint."""
    try:
        model.model_validate(body)
    except ValidationError as error:
        problems = [
            (
                problem.loc,
                f"required (give {flags[problem.loc]} or set {problem.loc} in the file)"
                if problem.message == "required" and problem.loc in flags
                else problem.message,
            )
            for problem in problems_from_pydantic(error, document=body)
        ]
        raise InvalidInput(
            f"invalid {what} ({plural(len(problems), 'problem')}; nothing was sent)",
            tuple(problems),
        ) from None


def read_signal_config(path: Path) -> str:
    """The config's text, once it has passed the same validation as the server's.

    Warnings go to stderr; an invalid config raises with every located error (exit 1), an
    unreadable or non-YAML file exits 2, as `validate-signal-config` does.
    """
    text = read_text(path)
    report = load_config_file(path, text)
    output = current_output()
    for warning in report.warnings:
        output.warn(f"{path}: {warning}")
    if not report.valid:
        count = len(report.errors)
        raise InvalidSignalConfig(
            f"{path}: invalid signal config ({count} problem{'' if count == 1 else 's'}; "
            "nothing was sent)",
            tuple((problem.loc, problem.message) for problem in report.errors),
        )
    return text


def id_list(value: str | None) -> list[str] | None:
    """`a,b, c` -> `["a", "b", "c"]`; None when the option was not given."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def paging_options(command: F) -> F:
    """`--limit` and `--cursor` for list commands (the server's paging, passed through)."""
    command = click.option(
        "--cursor", default=None, help="Continue after this cursor (from the previous page)."
    )(command)
    return click.option(
        "--limit",
        type=click.IntRange(1, 500),
        default=50,
        show_default=True,
        help="Items per page.",
    )(command)
