"""Operator commands on products (tenants): they talk to the store directly, like `tpc db
migrate`, so whoever runs them holds `TPC_DATABASE_URL`, not a product's token."""

from __future__ import annotations

import click

from api.cli.secret_commands import secret


@click.group("product")
def product() -> None:
    """Manage products (tenants), their tokens and secrets. Operator only: needs the store.

    Example: TPC_DATABASE_URL=postgresql://tpc@db:5432/tpc tpc product --help
    """


PRODUCT_COMMANDS: list[click.Command] = [product]

product.add_command(secret)
