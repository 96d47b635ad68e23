"""The product's shared words, declared once: run states, how runs end, iteration states, agents.

Every other module imports these instead of spelling the lists again, so a new status or reason
is one edit here (and whatever handles it), never a hunt through the layers. The tuples are
derived from the `Literal`s, in the order the API, CLI and dashboard show them.
"""

from __future__ import annotations

from typing import Literal, get_args

# How a run ended (a transcript's and a completed run's `status`).
RunStatus = Literal["passed", "failed", "errored", "timed_out", "cancelled"]
# Where a run is: waiting, executing, or one of the outcomes above.
RunState = Literal["queued", "running", "passed", "failed", "errored", "timed_out", "cancelled"]

TERMINAL: tuple[RunStatus, ...] = get_args(RunStatus)
RUN_STATES: tuple[RunState, ...] = get_args(RunState)
ACTIVE: tuple[RunState, ...] = tuple(s for s in RUN_STATES if s not in TERMINAL)
# The outcomes counted as failures (a cancelled run is neither a pass nor a failure).
FAILING: tuple[RunStatus, ...] = ("failed", "errored", "timed_out")

# Why a run stopped.
TerminationReason = Literal[
    "completed", "max_steps", "timeout", "budget_exceeded", "error", "cancelled"
]
TERMINATION_REASONS: tuple[TerminationReason, ...] = get_args(TerminationReason)

IterationStatus = Literal["running", "completed", "cancelled"]
ITERATION_STATUSES: tuple[IterationStatus, ...] = get_args(IterationStatus)

AgentKind = Literal["replay", "scripted", "llm", "command"]
AGENT_KINDS: tuple[AgentKind, ...] = get_args(AgentKind)

# Defaults an environment's definition falls back on, and that runners assume when a stored
# (older) definition lacks them.
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_SCRIPTED_MAX_STEPS = 8
DEFAULT_LLM_MAX_STEPS = 30
