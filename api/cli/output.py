"""How every command writes: one JSON document on stdout, or tables for people.

Errors and warnings always go to stderr, so `--format json` output can be piped as is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Format = Literal["table", "json"]
T = TypeVar("T")


class Output:
    """The chosen output format and the consoles to write to."""

    def __init__(self, fmt: Format) -> None:
        self.format = fmt
        self.console = Console(highlight=False, soft_wrap=False)
        self.errors = Console(stderr=True, highlight=False)

    @property
    def is_json(self) -> bool:
        return self.format == "json"

    def emit(self, document: Any, render: Callable[[Console], None]) -> None:
        """Print `document` as JSON, or call `render` to draw it for a person."""
        if self.is_json:
            click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            render(self.console)

    def warn(self, message: str) -> None:
        self.errors.print(f"[yellow]warning:[/] {escape(message)}")

    def error(self, message: str) -> None:
        self.errors.print(f"[red]error:[/] {escape(message)}")

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        """A progress bar on stderr for people at a terminal; silent otherwise."""
        if self.is_json or not sys.stderr.isatty() or total < 2:
            yield lambda: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.errors, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda: bar.advance(task)

    def track(self, items: Iterable[T], description: str, total: int) -> Iterator[T]:
        with self.progress(description, total) as advance:
            for item in items:
                yield item
                advance()


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 run`, `2 runs`, `3 dashboard sessions`: a count with its noun agreeing."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def current_output() -> Output:
    """The Output of the running command (set up by the root `tpc` group)."""
    output = click.get_current_context().find_object(Output)
    return output if output is not None else Output("table")


def hoist_format(args: list[str]) -> list[str]:
    """Accept `--format X` anywhere on the line by moving it to the root group."""
    rest: list[str] = []
    chosen: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--format" and i + 1 < len(args):
            chosen = ["--format", args[i + 1]]
            i += 2
            continue
        if arg.startswith("--format="):
            chosen = [arg]
        else:
            rest.append(arg)
        i += 1
    return chosen + rest
