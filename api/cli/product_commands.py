"""Operator commands on products (tenants): they talk to the store directly, like `tpc db
migrate`, so whoever runs them holds `TPC_DATABASE_URL`, not a product's token."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.operator import operator_service
from api.cli.output import current_output
from api.cli.secret_commands import secret


@click.group("product")
def product() -> None:
    """Manage products (tenants), their tokens and secrets. Operator only: needs the store.

    Example: TPC_DATABASE_URL=postgresql://tpc@db:5432/tpc tpc product --help
    """


@product.command("create")
@click.option("--name", required=True, help="The product's name (a label for people).")
def create(name: str) -> None:
    """Create a product and its first API token (named "default").

    The token is printed once and never again: only a keyed hash of it is stored. Give it
    to the product's team; `tpc token create` makes more, `tpc token revoke` ends one.

    Example: tpc product create --name "Payments team"
    """
    with operator_service() as service:
        created = service.catalog.create_product(name)

    def render(console: Console) -> None:
        product, token = created["product"], created["token"]
        console.print(f"Created product {product['id']} ({escape(product['name'])}).")
        console.print(f"Its API token ({token['id']}, named {token['name']!r}):")
        console.print(token["token"], markup=False)
        console.print("This is the only time the token is shown: keep it now.")

    current_output().emit(created, render)


@product.command("list")
def list_products() -> None:
    """List every product, oldest first, with its number of live tokens.

    Example: tpc product list --format json
    """
    with operator_service() as service:
        products = service.views.products()

    def render(console: Console) -> None:
        table = Table("id", "name", "created", "live tokens", box=None)
        for item in products:
            table.add_row(
                item["id"], escape(item["name"]), item["created_at"], str(item["active_tokens"])
            )
        console.print(table if products else "No products.")

    current_output().emit({"products": products}, render)


PRODUCT_COMMANDS: list[click.Command] = [product]

product.add_command(secret)
