"""`tpc sim task`: create, list and read tasks on the server."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from api.cli.client import api_client, parse, segment
from api.cli.inputs import check_definition, read_definition_file
from api.cli.listing import folding, list_command, render_list
from api.cli.output import current_output
from api.cli.results_view import compact, details_table, when
from api.http.bodies import TaskCreate
from projections.read_models import Page, TaskView


@click.group("task")
def task_group() -> None:
    """Tasks: what an agent is asked to do.

    Example: tpc sim task list
    """


@task_group.command("create")
@click.option("--name", help="The task's name (overrides the file's).")
@click.option("--prompt", help="What the agent is asked to do (overrides the file's).")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    help="A YAML task: name, prompt, success, user, tags, metadata.",
)
def create(name: str | None, prompt: str | None, file: Path | None) -> None:
    """Create a task; --name and --prompt win over the same fields in --file.

    Example: tpc sim task create --name install-sdk --prompt "Install the SDK."
    """
    body = read_definition_file(file, "task") if file is not None else {}
    if name is not None:
        body["name"] = name
    if prompt is not None:
        body["prompt"] = prompt
    check_definition(TaskCreate, body, "task", {"name": "--name", "prompt": "--prompt"})
    document = api_client().post("/v1/tasks", body)
    task = parse(TaskView, document)
    current_output().emit(document, lambda console: render_task(console, task))


task_group.add_command(
    list_command(
        "/v1/tasks",
        lambda console, page: render_tasks(console, page),
        help="""List the product's tasks, oldest first.

    Example: tpc sim task list --limit 100
    """,
        item=TaskView,
    )
)


@task_group.command("get")
@click.argument("task_id")
def get(task_id: str) -> None:
    """Show one task.

    Example: tpc sim task get task_abc
    """
    document, task = api_client().get_model(f"/v1/tasks/{segment(task_id)}", TaskView)
    current_output().emit(document, lambda console: render_task(console, task))


def render_task(console: Console, task: TaskView) -> None:
    rows = [
        ("id", escape(task.id)),
        ("name", escape(task.name)),
        ("prompt", escape(task.prompt)),
    ]
    for key, value in (
        ("success", task.success),
        ("user", task.user),
        ("tags", task.tags),
        ("metadata", task.metadata),
    ):
        if value:
            rows.append((key, escape(compact(value))))
    rows.append(("created", escape(when(task.created_at))))
    console.print(details_table(f"Task {escape(task.id)}", rows))


def render_tasks(console: Console, page: Page[TaskView]) -> None:
    render_list(
        console,
        page,
        title="Tasks",
        empty="No tasks yet: tpc sim task create --name NAME --prompt PROMPT",
        columns=folding("id", "name", "prompt", "tags", "created"),
        row=lambda task: (
            escape(task.id),
            escape(task.name),
            escape(compact(task.prompt, 60)),
            escape(", ".join(task.tags)),
            escape(when(task.created_at)),
        ),
        more="tpc sim task list",
    )
