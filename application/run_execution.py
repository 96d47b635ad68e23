"""One attempt of one run, from start to recorded outcome: what every executor does per run,
whether it schedules runs in this process (`application/executor.py`) or takes them from the
PostgreSQL queue (`application/queue_worker.py`).

The attempt is started (an event), handed to its environment's runner under the environment's
time limit while the runner's messages go to the live log, judged against the task's success
criteria (the `judge` criterion and llm signals asked of the judge, when one is configured),
its signals extracted, and its outcome recorded in one save.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application.live_log import LiveLogWriter
from application.run_recording import RunRecording
from domain.definitions import secret_references
from domain.iteration_key import IterationKey
from domain.iterations import Iteration, PlannedRun
from domain.runs import RecordedStats, Run
from domain.signals.extraction import ExtractedSignals, Extractor
from domain.signals.judging import Judge, JudgeKey, JudgeVerdict
from domain.stats import RunStats, derive_stats
from domain.success import CriterionUnavailable, judge_status
from domain.transcripts import (
    InvalidTranscript,
    Transcript,
    storable_transcript,
    transcript_from_object,
)
from domain.vocabulary import DEFAULT_TIMEOUT_S
from infra.llm.prices import MODEL_PRICES
from infra.llm.run_judging import JudgeSpend, judge_signals, judge_success
from infra.runners.base import Runner, RunnerError, RunOutcome, RunRequest
from infra.runners.imported import ImportedRunner
from infra.runners.rescore import RecordedOutcome, RescoreRunner

log = logging.getLogger("tpc.run_execution")

NO_JUDGE_IN_SERVER = (
    "llm signals are not judged by this executor (it has no judge configured); "
    "the value is missing rather than invented"
)


@dataclass(frozen=True)
class Attempt:
    """What one attempt of a run came to, before its transcript is recorded."""

    status: str
    outcome: RunOutcome | None  # None when the runner left nothing (timed out, crashed)
    error: str | None
    spend: JudgeSpend  # what judging the run's success cost


class RunExecution:
    """`judge` answers llm signals and the success `judge` criterion; without one, llm signal
    values are missing (with the reason) and runs of tasks with a `judge` criterion are
    errored."""

    def __init__(
        self, runs: RunRecording, runners: Mapping[str, Runner], judge: Judge | None = None
    ) -> None:
        self._runs = runs
        self._runners = runners
        self._judge = judge
        self._extractors: dict[IterationKey, Extractor | None] = {}
        # The live log writer of the loop it belongs to.
        self._live_loop: asyncio.AbstractEventLoop | None = None
        self._live_writer: LiveLogWriter | None = None
        # The runs of a re-score (`Iteration.rescore_of`) run no agent, whatever their kind.
        self._rescorer = RescoreRunner(runs.recorded_run, runs.blobs.get)

    async def execute(self, iteration: Iteration, planned: PlannedRun) -> None:
        """Start a new attempt of the run and record its outcome. Cancelled while the outcome
        is being saved, it lets the save land before it gives way."""
        run = await asyncio.to_thread(self._runs.start_run, iteration, planned.run_id)
        await self.attempt(iteration, planned, run)

    async def attempt(self, iteration: Iteration, planned: PlannedRun, run: Run) -> None:
        """`execute` for a run already started (`RunRecording.start_queued_run`)."""
        runs = self._runs
        if iteration.rescore_of is not None:
            await self._rescore(iteration, run, planned)
            return
        # Runners read the frozen definitions as JSON.
        environment = iteration.environments[planned.environment_id].model_dump(mode="json")
        secrets = await self._secrets(iteration.product_id, environment)
        live = self._live_logs().open(run)
        request = RunRequest(
            run_id=planned.run_id,
            task_id=planned.task_id,
            environment_id=planned.environment_id,
            repeat=planned.repeat,
            attempt=run.attempts,
            task=iteration.tasks[planned.task_id].model_dump(mode="json"),
            environment=environment,
            progress=live,
            secrets=secrets,
        )
        # An imported iteration's runs take their recorded transcripts, whatever the kind.
        runner = (
            ImportedRunner(runs.blobs.get, iteration.imported_transcript(planned.run_id))
            if iteration.imported_from is not None
            else None
        )
        try:
            result = await self._attempt(request, runner)
        finally:
            await live.close()
        # Cleaned first (a NUL an agent printed becomes U+FFFD), so that what is judged,
        # extracted and stored is what a store can keep.
        transcript, document = storable_transcript(
            _final_transcript(request, result, live.reported)
        )
        verdicts = await self._judge_signals(iteration, transcript, result.spend)
        record = asyncio.ensure_future(
            asyncio.to_thread(self._record, iteration, run, transcript, document, result, verdicts)
        )
        try:
            await asyncio.shield(record)
        except asyncio.CancelledError:
            await asyncio.wait([record])  # a thread's save cannot be interrupted: let it land
            raise

    async def _rescore(self, iteration: Iteration, run: Any, planned: PlannedRun) -> None:
        """A re-score's run: the source run's recorded transcript and outcome (status,
        termination reason, error, agent stats kept), its signals extracted and judged anew
        under this iteration's config; a source without a transcript gets no signals."""
        recorded = await self._rescorer.recorded(iteration.source_run(planned.run_id))
        spend = JudgeSpend()
        verdicts = None
        if recorded.transcript is not None:
            verdicts = await self._judge_signals(iteration, recorded.transcript, spend)
        record = asyncio.ensure_future(
            asyncio.to_thread(self._record_rescored, iteration, run, recorded, verdicts, spend)
        )
        try:
            await asyncio.shield(record)
        except asyncio.CancelledError:
            await asyncio.wait([record])  # a thread's save cannot be interrupted: let it land
            raise

    def _record_rescored(
        self,
        iteration: Iteration,
        run: Any,
        recorded: RecordedOutcome,
        verdicts: Mapping[JudgeKey, JudgeVerdict] | None,
        spend: JudgeSpend,
    ) -> None:
        transcript = recorded.transcript
        signals = None
        if transcript is not None:
            stats = derive_stats(transcript, MODEL_PRICES)
            signals = self._signals(iteration, transcript, stats, verdicts)
        self._runs.finish_run(
            run,
            recorded.status,
            recorded.termination_reason,
            RecordedStats.model_validate({**recorded.agent_stats, **spend.stats()}),
            None,
            recorded.error,
            signals,
            transcript_ref=recorded.transcript_ref,
        )

    async def _secrets(self, product: str, environment: Mapping[str, Any]) -> dict[str, str]:
        """The product's secrets the environment names, read at each attempt (one rotated
        since the trigger is used at once); no query for environments that name none."""
        names = {name for _, name in secret_references(environment)}
        if not names:
            return {}
        values = await asyncio.to_thread(self._runs.product_secrets, product)
        return {name: value for name, value in values.items() if name in names}

    def _live_logs(self) -> LiveLogWriter:
        """This event loop's writer (one for all runs; asyncio objects belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._live_writer is None or self._live_loop is not loop:
            self._live_loop = loop
            self._live_writer = LiveLogWriter(self._runs.record_live_messages)
        return self._live_writer

    def _extractor(self, iteration: Iteration) -> Extractor | None:
        key = IterationKey(iteration.experiment_id, iteration.number)
        if key not in self._extractors:
            frozen = iteration.signal_config
            self._extractors[key] = Extractor(frozen.parsed) if frozen else None
        return self._extractors[key]

    async def _attempt(self, request: RunRequest, runner: Runner | None = None) -> Attempt:
        """The runner's result under the environment's time limit, judged; `runner`: the
        environment kind's unless given."""
        kind = request.environment["agent"]["kind"]
        limit = float(request.environment.get("limits", {}).get("timeout_s", DEFAULT_TIMEOUT_S))
        runner = runner or self._runners.get(kind)
        spend = JudgeSpend()
        if runner is None:
            return Attempt("errored", None, f"no runner for agent kind {kind!r}", spend)
        try:
            outcome = await asyncio.wait_for(runner.run(request), timeout=limit)
        except TimeoutError:
            return Attempt(
                "timed_out", None, f"the run exceeded the time limit of {limit:g} s", spend
            )
        except RunnerError as error:
            # A runner may keep what the agent did before it failed (`AgentFailed`).
            partial = getattr(error, "transcript", None)
            kept = (
                RunOutcome(partial, "errored", "error") if isinstance(partial, Transcript) else None
            )
            return Attempt("errored", kept, str(error), spend)
        except Exception as error:
            log.exception("runner %r failed on run %s", kind, request.run_id)
            return Attempt("errored", None, f"the {kind} runner failed: {error}", spend)
        if outcome.status is not None:
            return Attempt(outcome.status, outcome, None, spend)
        success = request.task.get("success")
        checks = dict(outcome.checks)
        criterion = (success or {}).get("judge")
        if criterion and self._judge is not None:
            problem = await self._success_judge(self._judge, outcome, criterion, checks, spend)
            if problem is not None:
                return Attempt("errored", outcome, problem, spend)
        try:
            status = judge_status(outcome.transcript, outcome.termination_reason, success, checks)
        except CriterionUnavailable as error:
            return Attempt("errored", outcome, str(error), spend)
        return Attempt(status, outcome, None, spend)

    async def _success_judge(
        self,
        judge: Judge,
        outcome: RunOutcome,
        criterion: Mapping[str, Any],
        checks: dict[str, bool],
        spend: JudgeSpend,
    ) -> str | None:
        """Sets `checks["judge"]`; returns why the run is errored when the judge failed."""
        if outcome.termination_reason != "completed":
            checks["judge"] = False  # the run fails anyway: no need to ask
            return None
        verdict = await judge_success(judge, outcome.transcript, criterion, spend)
        if verdict.error is not None:
            return f"the success judge failed: {verdict.error}"
        checks["judge"] = bool(verdict.value)
        return None

    async def _judge_signals(
        self, iteration: Iteration, transcript: Transcript, spend: JudgeSpend
    ) -> Mapping[JudgeKey, JudgeVerdict] | None:
        extractor = self._extractor(iteration)
        if extractor is None or self._judge is None:
            return None
        return await judge_signals(self._judge, extractor, transcript, spend)

    def _record(
        self,
        iteration: Iteration,
        run: Any,
        transcript: Transcript,
        document: bytes,
        result: Attempt,
        verdicts: Mapping[JudgeKey, JudgeVerdict] | None,
    ) -> None:
        stats = derive_stats(transcript, MODEL_PRICES)
        signals = self._signals(iteration, transcript, stats, verdicts)
        self._runs.finish_run(
            run,
            result.status,
            transcript.termination_reason,
            RecordedStats.of(stats, _side_costs(transcript), result.spend.stats()),
            document,
            result.error,
            signals,
        )

    def _signals(
        self,
        iteration: Iteration,
        transcript: Transcript,
        stats: RunStats,
        verdicts: Mapping[JudgeKey, JudgeVerdict] | None,
    ) -> ExtractedSignals | None:
        """Every signal's value under the iteration's config, if it has one."""
        extractor = self._extractor(iteration)
        if extractor is None:
            return None
        values = extractor.extract(
            transcript, stats, verdicts=verdicts, no_verdict=NO_JUDGE_IN_SERVER
        )
        return ExtractedSignals(
            iteration.signal_config.hash if iteration.signal_config else "", values
        )


def _final_transcript(
    request: RunRequest, result: Attempt, reported: list[dict[str, Any]]
) -> Transcript:
    """The run's transcript with its final status and termination reason. A runner that left
    no transcript (timed out, crashed) is represented by the messages it reported live."""
    if result.outcome is not None:
        transcript = result.outcome.transcript
        reason = result.outcome.termination_reason
    else:
        reason = "timeout" if result.status == "timed_out" else "error"
        transcript = _stub_transcript(request, result.status, reason, result.error, reported)
    return transcript.model_copy(update={"status": result.status, "termination_reason": reason})


def _side_costs(transcript: Transcript) -> dict[str, Any]:
    """What a runner spent beside the agent (a simulated user's `user_*`), kept apart."""
    extra = transcript.stats.model_extra or {}
    return {key: value for key, value in extra.items() if key.startswith("user_")}


def _stub_transcript(
    request: RunRequest,
    status: str,
    reason: str,
    error: str | None,
    reported: list[dict[str, Any]] | None = None,
) -> Transcript:
    """What is known of a run that produced no transcript: the messages its runner reported
    (else the instruction) and why it ended."""
    if reported:
        try:
            return _stub(request, status, reason, error, reported)
        except InvalidTranscript:
            log.warning("run %s: its live messages do not form a transcript", request.run_id)
    return _stub(request, status, reason, error, [])


def _stub(
    request: RunRequest,
    status: str,
    reason: str,
    error: str | None,
    reported: list[dict[str, Any]],
) -> Transcript:
    now = datetime.now(UTC).isoformat()
    instruction = {"role": "user", "content": request.task["prompt"]}
    return transcript_from_object(
        {
            "version": 1,
            "task_id": request.task_id,
            "environment_id": request.environment_id,
            "status": status,
            "termination_reason": reason,
            "ended_at": now,
            "stats": {"duration": request.environment.get("limits", {}).get("timeout_s")}
            if status == "timed_out"
            else {},
            "messages": reported or [instruction],
            "final_answer": error or "",
        }
    )
