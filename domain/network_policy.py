"""What network an agent's commands get (`none` < `loopback` < `full`), and the operator's cap.

`none`: no network at all. `loopback`: a private loopback of their own (a command can serve
and call `localhost`, but never reaches the host's loopback services or anything beyond).
`full`: the host's network. The operator caps it with `TPC_AGENT_NETWORK_MAX`; an environment
that asks for more is refused (422 when it is created, `errored` when a run starts):
`environment_network.py` reads what an environment asks for.
"""

from __future__ import annotations

from typing import Literal

NetworkMode = Literal["none", "loopback", "full"]
NETWORK_MODES: tuple[NetworkMode, ...] = ("none", "loopback", "full")  # least to most
CAP_SETTING = "TPC_AGENT_NETWORK_MAX"


def network_mode(value: object) -> NetworkMode:
    """A mode from a definition's value: one of the names, or a boolean (the `llm` agent's
    original `network: true/false`, meaning `full` / `none`)."""
    if isinstance(value, bool):
        return "full" if value else "none"
    if isinstance(value, str) and value in NETWORK_MODES:
        return value
    raise ValueError(f"must be one of {', '.join(NETWORK_MODES)} (or true / false), not {value!r}")


def exceeds(requested: NetworkMode, cap: NetworkMode) -> bool:
    return NETWORK_MODES.index(requested) > NETWORK_MODES.index(cap)


def refusal(requested: NetworkMode, cap: NetworkMode) -> str:
    return (
        f"network {requested!r} is more than this server allows ({CAP_SETTING}={cap}): ask "
        f"for {_allowed(cap)}, or have the operator set {CAP_SETTING}={requested}"
    )


def _allowed(cap: NetworkMode) -> str:
    return " or ".join(repr(mode) for mode in NETWORK_MODES[: NETWORK_MODES.index(cap) + 1])
