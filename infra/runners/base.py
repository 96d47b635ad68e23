"""The runner port: a task and an environment in, a transcript out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domain.transcripts import Transcript


@dataclass(frozen=True, slots=True)
class RunRequest:
    run_id: str
    task_id: str
    environment_id: str
    repeat: int
    attempt: int
    task: dict[str, Any]  # the frozen task definition
    environment: dict[str, Any]  # the frozen environment definition


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run. `status` None means: judge it from the task's success criteria."""

    transcript: Transcript
    status: str | None
    termination_reason: str


class RunnerError(Exception):
    """The runner could not produce a transcript; the run is `errored` with this message."""


class Runner(Protocol):
    async def run(self, request: RunRequest) -> RunOutcome: ...
