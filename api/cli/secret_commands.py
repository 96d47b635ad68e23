"""`tpc product secret …`: the operator sets, lists and removes a product's secrets, on the
store directly (like `tpc db migrate`). A value is never an argument (it would stay in shell
history and show in `ps`): it is read from stdin or from a named variable."""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.operator import operator_service
from domain.errors import InvalidInput


def _read_value(value_from_env: str | None) -> str:
    if value_from_env is not None:
        if value_from_env not in os.environ:
            raise InvalidInput(
                f"--value-from-env {value_from_env}: that variable is not set",
                (("--value-from-env", "not set"),),
            )
        return os.environ[value_from_env]
    if sys.stdin.isatty():
        value: str = click.prompt("Value", hide_input=True, err=True)
        return value
    data = sys.stdin.buffer.read()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidInput(
            "the secret value on stdin is not UTF-8 text", (("value", "not UTF-8"),)
        ) from None
    # `echo value | tpc …` adds a newline that is not part of the value.
    return text.removesuffix("\n").removesuffix("\r")


@click.group("secret")
def secret() -> None:
    """A product's secrets: values its environments name as ${NAME} (a command agent's env,
    an llm agent's api_key). Never stored as events: rotate or erase them at will.

    Example: printf %s "$KEY" | tpc product secret set prd_123 OPENAI_KEY
    """


@secret.command("set")
@click.argument("product")
@click.argument("name")
@click.option(
    "--value-from-env",
    metavar="VAR",
    help="Read the value from this environment variable instead of stdin.",
)
def set_secret(product: str, name: str, value_from_env: str | None) -> None:
    """Create or replace secret NAME of PRODUCT (its id), the value read from stdin.

    Example: tpc product secret set prd_123 API_TOKEN --value-from-env API_TOKEN
    """
    from api.cli.output import current_output

    value = _read_value(value_from_env)
    with operator_service() as service:
        saved = service.catalog.set_secret(product, name, value)
    current_output().emit(
        {"product_id": product, **saved},
        lambda console: console.print(
            f"Secret {escape(name)} of {escape(product)} set at {saved['updated_at']}."
        ),
    )


@secret.command("list")
@click.argument("product")
def list_secrets(product: str) -> None:
    """The names of PRODUCT's secrets and when each was set (never their values).

    Example: tpc product secret list prd_123 --format json
    """
    from api.cli.output import current_output

    with operator_service() as service:
        listed = service.catalog.list_secrets(product)

    def render(console: Console) -> None:
        if not listed["items"]:
            console.print(f"Product {escape(product)} has no secrets.")
            return
        table = Table("name", "updated_at")
        for item in listed["items"]:
            table.add_row(item["name"], item["updated_at"])
        console.print(table)

    current_output().emit({"product_id": product, **listed}, render)


@secret.command("remove")
@click.argument("product")
@click.argument("name")
def remove_secret(product: str, name: str) -> None:
    """Erase secret NAME of PRODUCT. Environments naming it are refused at the next trigger.

    Example: tpc product secret remove prd_123 API_TOKEN
    """
    from api.cli.output import current_output

    with operator_service() as service:
        removed = service.catalog.remove_secret(product, name)
    current_output().emit(
        {"product_id": product, **removed},
        lambda console: console.print(f"Secret {escape(name)} of {escape(product)} removed."),
    )
