"""The shared vocabularies agree with the models and registries that use them."""

from __future__ import annotations

from typing import Any, get_args

from domain.definitions import Agent
from domain.transcripts import Transcript
from domain.vocabulary import (
    ACTIVE,
    AGENT_KINDS,
    RUN_STATES,
    TERMINAL,
    TERMINATION_REASONS,
)
from infra.runners.registry import build_runners


def test_run_states_are_the_active_states_then_the_outcomes() -> None:
    assert (*ACTIVE, *TERMINAL) == RUN_STATES
    assert ACTIVE == ("queued", "running")


def test_every_agent_model_and_runner_is_a_declared_kind() -> None:
    union = get_args(get_args(Agent)[0])
    kinds = {get_args(model.model_fields["kind"].annotation)[0] for model in union}
    assert kinds == set(AGENT_KINDS)
    assert set(build_runners(lambda ref: b"")) == set(AGENT_KINDS)


def literal_values(annotation: Any) -> set[Any]:
    """The values of a `Literal[...] | None` annotation."""
    (literal,) = (arg for arg in get_args(annotation) if arg is not type(None))
    return set(get_args(literal))


def test_transcripts_accept_exactly_the_declared_outcomes_and_reasons() -> None:
    fields = Transcript.model_fields
    assert literal_values(fields["status"].annotation) == set(TERMINAL)
    assert literal_values(fields["termination_reason"].annotation) == set(TERMINATION_REASONS)
