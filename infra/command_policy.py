"""Which products may run commands on the server (`TPC_ALLOW_COMMANDS`).

Commands are `command` agents, a task's `success.command` and the llm agent's `shell` tool:
each runs a program on the machine that executes the run. The operator decides who may:
`none` (the default), `all`, or a comma-separated list of product ids. Checked when such an
environment or task is created and again when an iteration is triggered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.definitions import command_use_in_environment, command_use_in_task
from domain.errors import Forbidden
from infra.settings import SettingsError

VARIABLE = "TPC_ALLOW_COMMANDS"
_PRODUCT_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class CommandPolicy:
    allow_all: bool = False
    products: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CommandPolicy:
        raw = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
        if raw in ("", "none"):
            return cls()
        if raw == "all":
            return cls(allow_all=True)
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        if not ids or any(not _PRODUCT_ID.match(i) or i in ("all", "none") for i in ids):
            raise SettingsError(
                f"{VARIABLE} must be none, all, or a comma-separated list of product ids "
                f"(got {raw!r})"
            )
        return cls(products=frozenset(ids))

    def allows(self, product: str) -> bool:
        return self.allow_all or product in self.products

    def require(
        self,
        product: str,
        environments: Iterable[Mapping[str, Any]] = (),
        tasks: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Raise `Forbidden` (403) when these definitions run commands and the product may
        not."""
        if self.allows(product):
            return
        for kind, definitions, use in (
            ("environment", environments, command_use_in_environment),
            ("task", tasks, command_use_in_task),
        ):
            for definition in definitions:
                what = use(definition)
                if what is not None:
                    raise Forbidden(
                        f"{kind} {definition.get('name')!r} uses {what}, which runs commands on "
                        f"the server, and product {product} may not: the operator allows it "
                        f"with {VARIABLE} (all, or a list of product ids; default none)"
                    )
