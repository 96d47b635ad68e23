"""The replay agent: returns stored transcripts (docs/spec.md §6)."""

from __future__ import annotations

from collections.abc import Callable

from domain.transcripts import parse_transcript
from infra.runners.base import RunnerError, RunOutcome, RunRequest


class ReplayRunner:
    """Repeat i of a task takes item i mod n of the transcripts stored for it, keyed by the
    task's id or its exact name. The recorded status, reason and stats are kept; the task and
    environment ids become the run's own."""

    def __init__(self, load_blob: Callable[[str], bytes]) -> None:
        self._load_blob = load_blob

    async def run(self, request: RunRequest) -> RunOutcome:
        transcripts = request.environment["agent"]["transcripts"]
        refs = transcripts.get(request.task_id) or transcripts.get(request.task["name"])
        if not refs:
            raise RunnerError(
                f"replay environment {request.environment['name']!r} has no transcript for task "
                f"{request.task_id} ({request.task['name']!r}); keys: {', '.join(transcripts)}"
            )
        ref = refs[request.repeat % len(refs)]
        transcript = parse_transcript(self._load_blob(ref), ref)
        transcript = transcript.model_copy(
            update={"task_id": request.task_id, "environment_id": request.environment_id}
        )
        return RunOutcome(
            transcript=transcript,
            status=transcript.status,
            termination_reason=transcript.termination_reason or "completed",
        )
