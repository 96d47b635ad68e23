"""The runner of a re-score (`ExperimentCommands.rescore`): no agent runs; each run gets its
source run's recorded transcript and outcome, to be extracted, judged and aggregated again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.runs import Run
from domain.transcripts import Transcript, parse_transcript


@dataclass(frozen=True, slots=True)
class RecordedOutcome:
    """What a source run recorded. `transcript` None: it left none (cancelled before it ran):
    the re-scored run keeps its status and gets no signals."""

    status: str
    termination_reason: str | None
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    transcript: Transcript | None = None
    transcript_ref: str | None = None

    @property
    def agent_stats(self) -> dict[str, Any]:
        """The source's stats without what its judges cost (a re-score's judges are its own)."""
        return {k: v for k, v in self.stats.items() if not k.startswith("judge_")}


class RescoreRunner:
    """Loads a source run's outcome from its stream and its transcript blob by reference
    (like the replay runner): no agent process, no model call."""

    def __init__(
        self, load_run: Callable[[str], Run | None], load_blob: Callable[[str], bytes]
    ) -> None:
        self._load_run = load_run
        self._load_blob = load_blob

    async def recorded(self, source_run_id: str) -> RecordedOutcome:
        run = await asyncio.to_thread(self._load_run, source_run_id)
        if run is None or not run.is_terminal:
            # A completed source iteration has only terminal runs; be safe anyway.
            return RecordedOutcome("cancelled", "cancelled")
        ref = run.transcript_ref
        transcript = None
        if ref is not None:
            document = await asyncio.to_thread(self._load_blob, ref)
            transcript = parse_transcript(document, ref)
        return RecordedOutcome(
            run.status, run.termination_reason, run.stats.to_json(), run.error, transcript, ref
        )
