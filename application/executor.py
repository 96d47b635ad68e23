"""The in-process executor: runs an iteration's runs in parallel inside `tpc serve` on the
embedded SQLite store (on PostgreSQL, the job queue's workers do it: `application/queue_worker.py`).

Concurrency is bounded by a semaphore; each run is one `RunExecution`; the iteration is
completed when its last run is terminal. On start, iterations left running by a previous
process are resumed: runs it had started are retried as a new attempt, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from application.background import BackgroundWork
from application.run_execution import RunExecution
from application.run_recording import RunRecording
from domain.iteration_key import IterationKey
from domain.iterations import Iteration, PlannedRun
from domain.signals.judging import Judge
from infra.runners.base import Runner

log = logging.getLogger("tpc.executor")
T = TypeVar("T")


class Executor:
    """Runs iterations in this process (`judge`: see `RunExecution`)."""

    def __init__(
        self,
        runs: RunRecording,
        runners: Mapping[str, Runner],
        concurrency: int,
        judge: Judge | None = None,
    ) -> None:
        self._runs = runs
        self._execution = RunExecution(runs, runners, judge)
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[IterationKey, set[asyncio.Task[None]]] = {}
        self._iterations: dict[IterationKey, Iteration] = {}
        self._shutting_down = False
        # Runs of each iteration this executor has yet to finish: the last one checks completion.
        self._remaining: dict[IterationKey, int] = {}
        self._executing: dict[IterationKey, set[asyncio.Task[Any]]] = {}
        self._cancelling: set[IterationKey] = set()
        self._submitting = BackgroundWork(log)

    async def resume(self) -> None:
        """Pick up every iteration a previous process left running."""
        for row in await asyncio.to_thread(self._runs.views.open_iterations):
            await self.submit(row["experiment_id"], row["number"])

    def start(self, exp_id: str, number: int) -> None:
        """`submit` in the background, so that a trigger's answer does not wait for it (its
        reads queue in the thread pool behind the bookkeeping of every run in flight).
        Should this process stop first, the next one resumes the iteration."""
        if not self._shutting_down:
            failure = f"iteration {exp_id}/{number} could not be submitted"
            self._submitting.start(self.submit(exp_id, number), failure)

    async def submit(self, exp_id: str, number: int) -> None:
        """Schedule every unfinished run of an iteration."""
        key = IterationKey(exp_id, number)
        iteration = await asyncio.to_thread(self._runs.load_iteration, exp_id, number)
        self._iterations[key] = iteration
        unfinished = await asyncio.to_thread(self._runs.views.unfinished_runs, exp_id, number)
        if not unfinished:
            await asyncio.to_thread(self._runs.complete_iteration_if_done, exp_id, number)
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
        key = IterationKey(exp_id, number)
        self._cancelling.add(key)
        for task in list(self._executing.get(key, ())):
            task.cancel()

    async def drain(self) -> None:
        """Wait for every scheduled run (tests and the demo use this)."""
        while self._submitting or any(self._tasks.values()):
            await self._submitting.wait()
            pending = [t for tasks in self._tasks.values() for t in tasks]
            await asyncio.gather(*pending, return_exceptions=True)

    async def stop(self) -> None:
        """Shutting down: abandon in-flight runs; the next start retries them."""
        self._shutting_down = True
        await self._submitting.cancel()
        pending = [t for tasks in self._tasks.values() for t in tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _execute(self, iteration: Iteration, planned: PlannedRun) -> None:
        runs = self._runs
        key = IterationKey(iteration.experiment_id, iteration.number)
        executing = self._executing.setdefault(key, set())
        current = asyncio.current_task()
        assert current is not None
        cancelled = False
        try:
            async with self._slots:
                if iteration.cancel_requested or key in self._cancelling:
                    raise asyncio.CancelledError
                executing.add(current)
                await self._execution.execute(iteration, planned)
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
                cancel = asyncio.to_thread(runs.cancel_run, iteration, planned.run_id)
                await self._to_the_end(cancel)
        finally:
            # Counted only once this run's outcome is saved, so the last one to finish sees
            # every other outcome when it checks whether the iteration is done.
            self._remaining[key] -= 1
        if self._remaining[key] == 0:
            check = asyncio.to_thread(
                runs.complete_iteration_if_done, iteration.experiment_id, iteration.number
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
