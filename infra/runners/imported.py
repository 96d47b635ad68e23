"""The runner of an imported iteration (`ExperimentCommands.import_logs`): no agent runs; each
run gets the transcript stored for it when the logs were imported, exactly as the replay runner
gives a replay environment's (so an import and a replay of the same transcripts agree)."""

from __future__ import annotations

from collections.abc import Callable

from domain.transcripts import parse_transcript
from infra.runners.base import RunOutcome, RunRequest


class ImportedRunner:
    """The recorded status, reason and stats are kept (a status left unset is judged from the
    task's success criteria); the task and environment ids become the run's own."""

    def __init__(self, load_blob: Callable[[str], bytes], transcript_ref: str) -> None:
        self._load_blob = load_blob
        self._ref = transcript_ref

    async def run(self, request: RunRequest) -> RunOutcome:
        transcript = parse_transcript(self._load_blob(self._ref), self._ref)
        transcript = transcript.model_copy(
            update={"task_id": request.task_id, "environment_id": request.environment_id}
        )
        return RunOutcome(
            transcript=transcript,
            status=transcript.status,
            termination_reason=transcript.termination_reason or "completed",
        )
