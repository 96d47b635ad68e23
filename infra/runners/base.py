"""The runner port: a task and an environment in, a transcript out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.transcripts import Transcript


class RunProgress(Protocol):
    """Where a runner reports each transcript message as it happens (live `run logs
    --follow`). Cheap and synchronous: implementations buffer and flush on their own."""

    def message(self, message: dict[str, Any]) -> None: ...


class _NoProgress:
    def message(self, message: dict[str, Any]) -> None:
        pass


NO_PROGRESS: RunProgress = _NoProgress()


@dataclass(frozen=True, slots=True)
class RunRequest:
    run_id: str
    task_id: str
    environment_id: str
    repeat: int
    attempt: int
    task: dict[str, Any]  # the frozen task definition
    environment: dict[str, Any]  # the frozen environment definition
    progress: RunProgress = NO_PROGRESS
    # The product's secrets, for the `${NAME}`s of the environment (never in an event).
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A finished run. `status` None means: judge it from the task's success criteria.

    `checks` holds the success criteria only the runner can evaluate (`command`: exit 0 in the
    run's workspace), by criterion name: `domain.success.judge_status` reads them.
    """

    transcript: Transcript
    status: str | None
    termination_reason: str
    checks: Mapping[str, bool] = field(default_factory=dict)


class RunnerError(Exception):
    """The runner could not produce a transcript; the run is `errored` with this message."""


class Runner(Protocol):
    async def run(self, request: RunRequest) -> RunOutcome: ...
