"""The in-process executor: runs an iteration's runs in parallel inside `tpc serve`.

Concurrency is bounded by a semaphore. Each run is started (an event), handed to its
environment's runner under the environment's time limit, judged against the task's success
criteria, its signals extracted, and its outcome recorded in one save; the iteration is
completed when its last run is terminal. On start, iterations left running by a previous
process are resumed: runs it had started are retried as a new attempt, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from domain.iterations import Iteration, PlannedRun
from domain.signals.config import SignalConfig
from domain.signals.extraction import Extractor
from domain.stats import derive_stats
from domain.success import CriterionUnavailable, judge_status
from domain.transcripts import Transcript, transcript_from_object
from infra.llm.prices import MODEL_PRICES
from infra.runners.base import Runner, RunnerError, RunOutcome, RunRequest
from infra.service import Service

log = logging.getLogger("tpc.executor")
T = TypeVar("T")

NO_JUDGE_IN_SERVER = (
    "llm signals are not judged by this server yet (no judge is wired in); "
    "the value is missing rather than invented"
)


class Executor:
    def __init__(self, service: Service, runners: Mapping[str, Runner], concurrency: int) -> None:
        self._service = service
        self._runners = runners
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[tuple[str, int], set[asyncio.Task[None]]] = {}
        self._iterations: dict[tuple[str, int], Iteration] = {}
        self._extractors: dict[tuple[str, int], Extractor | None] = {}
        self._shutting_down = False
        # Runs of each iteration this executor has yet to finish: the last one checks completion.
        self._remaining: dict[tuple[str, int], int] = {}
        self._executing: dict[tuple[str, int], set[asyncio.Task[Any]]] = {}
        self._cancelling: set[tuple[str, int]] = set()

    async def resume(self) -> None:
        """Pick up every iteration a previous process left running."""
        for row in await asyncio.to_thread(self._service.views.open_iterations):
            await self.submit(row["experiment_id"], row["number"])

    async def submit(self, exp_id: str, number: int) -> None:
        """Schedule every unfinished run of an iteration."""
        key = (exp_id, number)
        iteration = await asyncio.to_thread(self._service.load_iteration, exp_id, number)
        self._iterations[key] = iteration
        unfinished = await asyncio.to_thread(self._service.views.unfinished_runs, exp_id, number)
        if not unfinished:
            await asyncio.to_thread(self._service.complete_iteration_if_done, exp_id, number)
            return
        planned = {run.run_id: run for run in iteration.runs}
        tasks = self._tasks.setdefault(key, set())
        self._remaining[key] = self._remaining.get(key, 0) + len(unfinished)
        for row in unfinished:
            task = asyncio.create_task(self._execute(iteration, planned[row["id"]]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def cancel(self, exp_id: str, number: int) -> None:
        """Stop every run of the iteration; each records itself as cancelled. Runs that are
        executing are interrupted; queued ones see the flag when their turn comes (a task
        cancelled before it first runs would skip its own bookkeeping)."""
        key = (exp_id, number)
        self._cancelling.add(key)
        for task in list(self._executing.get(key, ())):
            task.cancel()

    async def drain(self) -> None:
        """Wait for every scheduled run (tests and the demo use this)."""
        while any(self._tasks.values()):
            pending = [t for tasks in self._tasks.values() for t in tasks]
            await asyncio.gather(*pending, return_exceptions=True)

    async def stop(self) -> None:
        """Shutting down: abandon in-flight runs; the next start retries them."""
        pending = [t for tasks in self._tasks.values() for t in tasks]
        self._shutting_down = True
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _extractor(self, iteration: Iteration) -> Extractor | None:
        key = (iteration.experiment_id, iteration.number)
        if key not in self._extractors:
            frozen = iteration.signal_config
            self._extractors[key] = (
                Extractor(SignalConfig.model_validate(frozen["parsed"])) if frozen else None
            )
        return self._extractors[key]

    async def _execute(self, iteration: Iteration, planned: PlannedRun) -> None:
        service = self._service
        key = (iteration.experiment_id, iteration.number)
        executing = self._executing.setdefault(key, set())
        current = asyncio.current_task()
        assert current is not None
        cancelled = False
        try:
            async with self._slots:
                if iteration.cancel_requested or key in self._cancelling:
                    raise asyncio.CancelledError
                executing.add(current)
                run = await asyncio.to_thread(service.start_run, iteration, planned.run_id)
                request = RunRequest(
                    run_id=planned.run_id,
                    task_id=planned.task_id,
                    environment_id=planned.environment_id,
                    repeat=planned.repeat,
                    attempt=run.attempts,
                    task=iteration.tasks[planned.task_id],
                    environment=iteration.environments[planned.environment_id],
                )
                result = await self._attempt(request)
                record = asyncio.to_thread(self._record, iteration, run, request, result)
                await self._to_the_end(record)
        except asyncio.CancelledError:
            if self._shutting_down:
                raise
            cancelled = True
        except Exception:
            log.exception("run %s could not be recorded", planned.run_id)
            self._remaining[key] -= 1
            raise
        finally:
            executing.discard(current)
        try:
            if cancelled:
                cancel = asyncio.to_thread(service.cancel_run, iteration, planned.run_id)
                await self._to_the_end(cancel)
        finally:
            # Counted only once this run's outcome is saved, so the last one to finish sees
            # every other outcome when it checks whether the iteration is done.
            self._remaining[key] -= 1
        if self._remaining[key] == 0:
            check = asyncio.to_thread(
                service.complete_iteration_if_done, iteration.experiment_id, iteration.number
            )
            await self._to_the_end(check)

    async def _to_the_end(self, work: Coroutine[Any, Any, T]) -> T:
        """Finish recording even when this run is cancelled meanwhile (a cancel that arrives
        while the outcome is being saved must not lose the outcome or the completion check)."""
        task = asyncio.ensure_future(work)
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if self._shutting_down:
                    raise

    async def _attempt(self, request: RunRequest) -> tuple[str, RunOutcome | None, str | None]:
        """(status, outcome, error): the runner's result under the environment's time limit."""
        kind = request.environment["agent"]["kind"]
        limit = float(request.environment.get("limits", {}).get("timeout_s", 600))
        runner = self._runners.get(kind)
        if runner is None:
            return "errored", None, f"no runner for agent kind {kind!r}"
        try:
            outcome = await asyncio.wait_for(runner.run(request), timeout=limit)
        except TimeoutError:
            return "timed_out", None, f"the run exceeded the time limit of {limit:g} s"
        except RunnerError as error:
            return "errored", None, str(error)
        if outcome.status is not None:
            return outcome.status, outcome, None
        try:
            status = judge_status(
                outcome.transcript,
                outcome.termination_reason,
                request.task.get("success"),
            )
        except CriterionUnavailable as error:
            return "errored", outcome, str(error)
        return status, outcome, None

    def _record(
        self,
        iteration: Iteration,
        run: Any,
        request: RunRequest,
        result: tuple[str, RunOutcome | None, str | None],
    ) -> None:
        status, outcome, error = result
        if outcome is not None:
            transcript = outcome.transcript
            reason: str | None = outcome.termination_reason
        else:
            reason = "timeout" if status == "timed_out" else "error"
            transcript = _stub_transcript(request, status, reason, error)
        transcript = transcript.model_copy(update={"status": status, "termination_reason": reason})
        stats = derive_stats(transcript, MODEL_PRICES)
        extractor = self._extractor(iteration)
        signals = None
        if extractor is not None:
            values = extractor.extract(transcript, stats, no_verdict=NO_JUDGE_IN_SERVER)
            signals = (
                str(iteration.signal_config["hash"]) if iteration.signal_config else "",
                {sid: value.to_json() for sid, value in values.items()},
            )
        self._service.finish_run(
            run,
            status,
            reason,
            stats.to_json(),
            transcript.model_dump_json(exclude_none=True).encode(),
            error,
            signals,
        )


def _stub_transcript(
    request: RunRequest, status: str, reason: str, error: str | None
) -> Transcript:
    """What is known of a run that produced no transcript: the instruction and why it ended."""
    now = datetime.now(UTC).isoformat()
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
            "messages": [{"role": "user", "content": request.task["prompt"]}],
            "final_answer": error or "",
        }
    )
