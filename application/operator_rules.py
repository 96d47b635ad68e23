"""What the operator allows a product: commands, where the server's provider keys go, the
network cap, `${NAME}` references to the product's own secrets, and the sizes of iterations
(runs per iteration, iterations running at once).

Checked when a definition is created (catalog commands) and again at trigger (experiment
commands), since settings and secrets change in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.definitions import secret_references
from domain.errors import InvalidInput, TooManyRequests
from domain.experiments import Experiment
from domain.network_policy import NetworkMode
from domain.secrets import how_to_set
from infra.command_policy import CommandPolicy
from infra.llm.key_policy import ProviderKeyPolicy
from infra.settings import Limits
from infra.store.secrets import SecretStore


class OperatorRules:
    def __init__(
        self,
        command_policy: CommandPolicy,
        key_policy: ProviderKeyPolicy,
        network_cap: NetworkMode,
        secrets: SecretStore,
        limits: Limits,
    ) -> None:
        self.command_policy = command_policy
        self.key_policy = key_policy
        self.network_cap = network_cap
        self._secrets = secrets
        self.limits = limits

    def check(
        self,
        product: str,
        environments: Iterable[Mapping[str, Any]],
        tasks: Iterable[Mapping[str, Any]],
    ) -> None:
        """What the operator allows this product (when a definition is created, and again at
        trigger since settings and secrets change): commands (403), where the server's
        provider keys go, and that every `${NAME}` names one of the product's secrets (422)."""
        environments, tasks = list(environments), list(tasks)
        self.command_policy.require(product, environments, tasks)
        self.key_policy.check_environments(environments)
        references = [
            (definition.get("name"), where, name)
            for definition in environments
            for where, name in secret_references(definition)
        ]
        if not references:
            return
        known = {secret["name"] for secret in self._secrets.names(product)}
        missing = [(env, where, name) for env, where, name in references if name not in known]
        if missing:
            env, where, name = missing[0]
            raise InvalidInput(
                f"environment {env!r}: {where} uses ${{{name}}}, which is not a secret of this "
                f"product (variables come only from the product's secrets, never from the "
                f"server's environment): set it with {how_to_set(name)}",
                tuple(
                    (where, f"${{{name}}} is not a secret of this product")
                    for _, where, name in missing
                ),
            )

    def require_import_size(self, count: int) -> None:
        """422 for an import of nothing, or of more runs than the operator allows."""
        limit = self.limits.max_runs_per_iteration
        if count == 0:
            raise InvalidInput(
                "nothing to import: give at least one transcript", (("runs", "must not be empty"),)
            )
        if count > limit:
            raise InvalidInput(
                f"the import would plan {count} runs, over the server's limit of {limit} "
                "(TPC_MAX_RUNS_PER_ITERATION): import the logs in several iterations",
                (("runs", f"{count} runs per iteration > {limit}"),),
            )

    def require_rescore_within_limit(self, count: int) -> None:
        """422 when a re-score would plan more runs than the operator allows (its source
        may have been planned under a higher limit)."""
        limit = self.limits.max_runs_per_iteration
        if count > limit:
            raise InvalidInput(
                f"the re-score would plan {count} runs, over the server's limit of {limit} "
                "(TPC_MAX_RUNS_PER_ITERATION)",
                (("iteration", f"{count} runs per iteration > {limit}"),),
            )

    def require_runs_within_limit(self, experiment: Experiment, loc: str) -> None:
        """422 when the experiment's next iteration would plan more runs than the operator
        allows (checked when tasks, environments or repeats change, and at trigger)."""
        limit = self.limits.max_runs_per_iteration
        count = experiment.runs_per_iteration
        if count > limit:
            sizes = (
                f"{len(experiment.task_ids)} tasks × {len(experiment.env_ids)} environments × "
                f"{experiment.repeats} repeats"
            )
            message = (
                f"{sizes} = {count} runs per iteration, over the server's limit of {limit} "
                "(TPC_MAX_RUNS_PER_ITERATION)"
            )
            raise InvalidInput(message, ((loc, f"{count} runs per iteration > {limit}"),))

    def require_running_iterations_within_limit(self, running: int) -> None:
        """429 while the product already has `running` iterations running, as many as the
        operator allows (a soft limit: two racing triggers may both pass it)."""
        limit = self.limits.max_running_iterations
        if running >= limit:
            raise TooManyRequests(
                f"{limit} iterations of this product are already running, the server's limit "
                "(TPC_MAX_RUNNING_ITERATIONS): wait for one to complete, or cancel one"
            )
