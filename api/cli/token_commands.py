"""`tpc token`: a product's API tokens (operator only, on the store directly): several per
product, named, shown once when made, revocable. Only keyed hashes are stored."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.operator import operator_service
from api.cli.output import current_output, plural


@click.group("token")
def token() -> None:
    """Create, list and revoke products' API tokens. Operator only: needs the store.

    Example: tpc token list prd_abc
    """


@token.command("create")
@click.argument("product_id")
@click.option("--name", required=True, help="What the token is for (unique among live ones).")
def create(product_id: str, name: str) -> None:
    """Create an API token for PRODUCT_ID; it is printed once, never again.

    Example: tpc token create prd_abc --name ci
    """
    with operator_service() as service:
        issued = service.catalog.issue_token(product_id, name)

    def render(console: Console) -> None:
        console.print(
            f"Created token {issued['id']} ({escape(issued['name'])}) for {issued['product_id']}:"
        )
        console.print(issued["token"], markup=False)
        console.print("This is the only time the token is shown: keep it now.")

    current_output().emit(issued, render)


@token.command("list")
@click.argument("product_id")
def list_tokens(product_id: str) -> None:
    """List PRODUCT_ID's tokens (never the tokens: their last four characters).

    Example: tpc token list prd_abc
    """
    with operator_service() as service:
        tokens = service.catalog.tokens(product_id)

    def render(console: Console) -> None:
        table = Table("id", "name", "created", "ends with", "revoked", "key", box=None)
        for item in tokens:
            table.add_row(
                item["id"],
                escape(item["name"]),
                item["created_at"],
                f"…{item['hint']}" if item["hint"] else "(legacy)",
                item["revoked_at"] or "no",
                "current" if item["current_key"] else "another key: cannot authenticate",
            )
        console.print(table if tokens else "No tokens.")

    current_output().emit({"product_id": product_id, "tokens": tokens}, render)


@token.command("revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke TOKEN_ID: API calls with it get 401 at once and its dashboard sessions end.

    Example: tpc token revoke tok_abc
    """
    with operator_service() as service:
        revoked: dict[str, Any] = service.catalog.revoke_token(token_id)

    def render(console: Console) -> None:
        sessions = plural(revoked["sessions_ended"], "dashboard session")
        console.print(
            f"Revoked token {revoked['id']} ({escape(revoked['name'])}) of "
            f"{revoked['product_id']}; {sessions} ended."
        )

    current_output().emit(revoked, render)


TOKEN_COMMANDS: list[click.Command] = [token]
