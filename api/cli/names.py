"""Names for the ids the server's documents carry: tables show a task or an environment by
its name (ids are for copying, and stay in their own column)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from api.cli.client import ApiClient, ApiNotFound, segment

# A task or environment id inside free text (history summaries).
_CATALOG_ID = re.compile(r"\b(?:task|env)_[a-z2-7]{4,32}\b")


@dataclass(frozen=True)
class Names:
    tasks: dict[str, str] = field(default_factory=dict)
    environments: dict[str, str] = field(default_factory=dict)

    def task(self, task_id: object) -> str:
        return self.tasks.get(str(task_id), str(task_id))

    def environment(self, env_id: object) -> str:
        return self.environments.get(str(env_id), str(env_id))

    def in_text(self, text: str) -> str:
        """`task task_ab12 attached` -> `task "install-sdk" (task_ab12) attached`."""

        def named(match: re.Match[str]) -> str:
            ident = match.group(0)
            name = self.tasks.get(ident) or self.environments.get(ident)
            return f'"{name}" ({ident})' if name else ident

        return _CATALOG_ID.sub(named, text)


def catalog_names(client: ApiClient) -> Names:
    """Every task's and environment's name of the product (two listings)."""
    tasks = client.list_all("/v1/tasks")["items"]
    environments = client.list_all("/v1/environments")["items"]
    return Names(
        {str(t["id"]): str(t.get("name") or t["id"]) for t in tasks},
        {str(e["id"]): str(e.get("name") or e["id"]) for e in environments},
    )


def names_of(client: ApiClient, task_id: object, env_id: object) -> Names:
    """The names of one task and one environment (ids that are not known stay ids)."""
    names = Names()
    for path, ident, into in (
        ("/v1/tasks", task_id, names.tasks),
        ("/v1/environments", env_id, names.environments),
    ):
        if not isinstance(ident, str) or not ident:
            continue
        try:
            item = client.get(f"{path}/{segment(ident)}")
        except ApiNotFound:  # e.g. a replayed transcript's own label
            continue
        into[ident] = str(item.get("name") or ident)
    return names
