"""The shapes CLI commands share: list commands over a paged API, the tables they print, and
an experiment's attach/detach subcommands. Each is built by one factory, so every list pages
and prints alike and every membership change reads the same."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.client import api_client, segment
from api.cli.inputs import paging_options
from api.cli.output import current_output
from projections.read_models import Page, ReadModel

Render = Callable[[Console, Any], None]
Item = TypeVar("Item", bound=ReadModel)


@dataclass(frozen=True)
class Column:
    """One column of a list table (rich's defaults unless said otherwise)."""

    name: str
    justify: Literal["left", "right"] = "left"
    no_wrap: bool = False
    overflow: Literal["ellipsis", "fold"] = "ellipsis"


def folding(*names: str) -> tuple[Column, ...]:
    """Columns that fold when narrow, but for the first (an id, copied into other commands)."""
    return tuple(
        Column(name, no_wrap=index == 0, overflow="fold") for index, name in enumerate(names)
    )


def render_more(console: Console, page: Page[Any], command: str) -> None:
    """Tell people how to read the next page of a list."""
    if page.next_cursor:
        console.print(f"[dim]More: {escape(command)} --cursor {escape(page.next_cursor)}[/]")


def render_list(
    console: Console,
    page: Page[Item],
    *,
    title: str,
    empty: str,
    columns: Sequence[Column],
    row: Callable[[Item], Sequence[str]],
    more: str | None = None,
) -> None:
    """A page of items as a table titled with their count, or `empty` when there are none;
    `more` is the command that reads the next page."""
    items = page.items
    if not items:
        console.print(empty)
        return
    table = Table(title=f"{title} ({len(items)})", title_justify="left")
    for column in columns:
        table.add_column(
            column.name, justify=column.justify, no_wrap=column.no_wrap, overflow=column.overflow
        )
    for item in items:
        table.add_row(*row(item))
    console.print(table)
    if more is not None:
        render_more(console, page, more)


def list_command(path: str, render: Render, help: str, item: type[ReadModel]) -> click.Command:
    """`list [--limit N] [--cursor C]`: one page of `path` as `Page[item]`, drawn by `render`."""

    @click.command("list", help=help)
    @paging_options
    def list_items(limit: int, cursor: str | None) -> None:
        document, page = api_client().get_model(
            path,
            Page[item],  # type: ignore[valid-type]
            {"limit": limit, "cursor": cursor},
        )
        current_output().emit(document, lambda console: render(console, page))

    return list_items


@dataclass(frozen=True)
class Member:
    """What an experiment holds a list of: how commands, paths and help texts name it."""

    group: str  # the subcommand group: `experiment task …`
    singular: str  # with its article: "a task"
    plural: str
    collection: str  # the API's path segment and body key: /tasks, {"task_id": …}
    key: str
    metavar: str
    example: str  # an id for the help's examples


def membership_group(
    member: Member, experiment_path: Callable[[str], str], emit: Callable[[Any], None]
) -> click.Group:
    """`GROUP add EXP ID` and `GROUP remove EXP ID`: attach or detach one member, then show
    the experiment (`emit`) as the API returns it."""
    example = f"Example: tpc sim experiment {member.group} {{}} exp_789 {member.example}"

    @click.group(
        member.group,
        help=f"Attach {member.plural} to an experiment or detach them.\n\n" + example.format("add"),
    )
    def group() -> None:
        pass

    @group.command(
        "add", help=f"Attach {member.singular} to an experiment.\n\n" + example.format("add")
    )
    @click.argument("exp_id", metavar="EXP")
    @click.argument("member_id", metavar=member.metavar)
    def add(exp_id: str, member_id: str) -> None:
        path = f"{experiment_path(exp_id)}/{member.collection}"
        emit(api_client().post(path, {member.key: member_id}))

    @group.command(
        "remove",
        help=f"Detach {member.singular} from an experiment (iterations already triggered keep "
        "it).\n\n" + example.format("remove"),
    )
    @click.argument("exp_id", metavar="EXP")
    @click.argument("member_id", metavar=member.metavar)
    def remove(exp_id: str, member_id: str) -> None:
        path = f"{experiment_path(exp_id)}/{member.collection}/{segment(member_id)}"
        emit(api_client().delete(path))

    return group
