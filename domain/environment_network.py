"""The network an environment's agent asks for, checked against the operator's cap when the
environment is created (the vocabulary and the cap: `network_policy.py`)."""

from __future__ import annotations

from domain.definitions import EnvironmentDefinition
from domain.errors import InvalidInput
from domain.network_policy import NetworkMode, exceeds, network_mode, refusal


def requested_network(environment: EnvironmentDefinition) -> NetworkMode | None:
    """The network an environment's agent asks for; None when it asks for nothing in
    particular (a `command` agent without `network` gets what the operator allows, an `llm`
    agent without the `shell` tool runs no commands)."""
    agent = environment.agent
    if agent.kind == "llm" and "shell" not in agent.tools:
        return None  # only its `shell` tool runs commands
    value = getattr(agent, "network", None)
    return None if value is None else network_mode(value)


def check_network(environment: EnvironmentDefinition, cap: NetworkMode) -> None:
    """Refuse (InvalidInput, located at `agent.network`, where the user wrote it) an
    environment asking for more network than `cap`."""
    requested = requested_network(environment)
    if requested is not None and exceeds(requested, cap):
        message = refusal(requested, cap)
        where = "agent.network"
        raise InvalidInput(f"invalid environment: {where}: {message}", ((where, message),))
