"""Runs on PostgreSQL: the dispatcher that queues an iteration's runs, and the worker that
executes them (`tpc worker`, or in-process inside `tpc serve`).

The dispatcher has the executor's interface (`submit`, `cancel`, `resume`, `stop`), so the API
does not care which one it talks to. The worker takes `tpc.execute_run` jobs, executes each run
exactly as the in-process executor does (`RunExecution`), and closes the iteration when its
last run is done. Alongside, every worker sweeps: jobs of workers that went silent go back to
the queue, and iterations whose runs were never queued (a crash between the trigger's save and
the enqueue) are queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass

import procrastinate
from procrastinate import signals
from procrastinate.worker import Worker

from application.background import BackgroundWork
from application.iteration_closer import IterationCloser
from application.run_execution import RunExecution
from application.run_recording import RunRecording
from domain.iteration_key import IterationKey
from domain.iterations import Iteration, PlannedRun
from domain.runs import Run
from infra.run_queue import (
    QUEUE_NAME,
    TASK_NAME,
    QueueStatistics,
    dispatch_runs,
    dispatched_iterations,
    ensure_queue_schema,
    requeue_stalled,
)

log = logging.getLogger("tpc.worker")

# Iterations a worker keeps loaded, the most recently used: its jobs come an iteration at a
# time, and a long-lived worker meets every iteration there is.
RECENT_ITERATIONS = 64


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 16
    # A worker proves it is alive this often; one silent for `stalled_after_s` is presumed
    # dead and its runs are retried elsewhere.
    heartbeat_s: float = 5.0
    stalled_after_s: float = 30.0
    sweep_interval_s: float = 10.0
    # On SIGTERM: how long in-flight runs may finish before they are interrupted and requeued.
    shutdown_grace_s: float = 30.0
    # How often a running job looks for a cancel request on its iteration.
    cancel_poll_s: float = 1.0
    # How often, at most, the worker checks whether an iteration it worked on is done.
    completion_check_s: float = 1.0
    # The pause before a worker that stopped unasked starts again.
    restart_after_s: float = 1.0


class QueueDispatcher:
    """The API side: an iteration's runs become jobs; a cancel is an event the jobs see."""

    def __init__(self, runs: RunRecording, queue: procrastinate.App) -> None:
        self._runs = runs
        self.queue = queue
        self._dispatching = BackgroundWork(log)
        self._statistics = QueueStatistics()

    def start(self, exp_id: str, number: int) -> None:
        """`submit` in the background, so that a trigger's answer does not wait for it; an
        iteration left undispatched (this process stopped first, the database was away) is
        dispatched by a worker's sweep."""
        failure = f"iteration {exp_id}/{number} could not be dispatched"
        self._dispatching.start(self.submit(exp_id, number), failure)

    async def submit(self, exp_id: str, number: int) -> None:
        unfinished = await asyncio.to_thread(self._runs.views.unfinished_runs, exp_id, number)
        if not unfinished:
            await asyncio.to_thread(self._runs.complete_iteration_if_done, exp_id, number)
            return
        run_ids = [row["id"] for row in unfinished]
        await dispatch_runs(self.queue, exp_id, number, run_ids, self._statistics)

    async def cancel(self, exp_id: str, number: int) -> None:
        """The CancelRequested event is already saved: queued jobs cancel their run when they
        come up, running ones notice within `cancel_poll_s`."""

    async def resume(self) -> int:
        """Queue the runs of every running iteration never marked as dispatched; returns how
        many iterations."""
        dispatched = await dispatched_iterations(self.queue)
        count = 0
        for row in await asyncio.to_thread(self._runs.views.open_iterations):
            key = IterationKey(row["experiment_id"], row["number"])
            if key not in dispatched:
                await self.submit(*key)
                count += 1
        return count

    async def stop(self) -> None:
        await self._dispatching.wait()


class QueueWorker:
    """Executes `tpc.execute_run` jobs until stopped (SIGTERM/SIGINT, or `stop()`)."""

    def __init__(
        self,
        runs: RunRecording,
        execution: RunExecution,
        queue: procrastinate.App,
        options: WorkerOptions,
        *,
        install_signal_handlers: bool = True,
    ) -> None:
        self._runs = runs
        self._execution = execution
        self.queue = queue
        self._options = options
        self.recent_iterations: OrderedDict[IterationKey, Iteration] = OrderedDict()
        self._closer = IterationCloser(runs, options.completion_check_s)
        self._sweeping = QueueDispatcher(runs, queue)  # what a crash left undispatched
        self._stopping = False
        queue.task(
            name=TASK_NAME,
            queue=QUEUE_NAME,
            # A job interrupted by a shutdown, or failing outside a run (the database away),
            # is tried again; a run's own failures are recorded outcomes, not job failures.
            retry=procrastinate.RetryStrategy(max_attempts=20, wait=2),
            pass_context=True,
        )(self._execute_job)
        self._worker = Worker(
            queue,
            queues=[QUEUE_NAME],
            concurrency=options.concurrency,
            update_heartbeat_interval=options.heartbeat_s,
            stalled_worker_timeout=options.stalled_after_s,
            shutdown_graceful_timeout=options.shutdown_grace_s,
            # Ours (`run`): procrastinate's would stop its worker, which `_work` starts again.
            install_signal_handlers=False,
            delete_jobs="successful",
        )
        self._install_signal_handlers = install_signal_handlers

    async def run(self) -> None:
        await ensure_queue_schema(self.queue)
        self._closer.start()
        sweeper = asyncio.create_task(self._sweep_forever())
        # SIGTERM and SIGINT stop it (a second one, after, interrupts at once).
        stop_on_signal = (
            signals.on_stop(self.stop)
            if self._install_signal_handlers
            else contextlib.nullcontext()
        )
        try:
            with stop_on_signal:
                await self._work()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await self._closer.stop()

    async def _work(self) -> None:
        """procrastinate's worker until `stop`. Should it end before (a failed heartbeat or
        fetch: the database away; or its registration pruned by a sweep while it was alive but
        its heartbeat late, after which every fetch fails), it registers again and goes on:
        inside `tpc serve` nothing else would run the runs, while the API went on answering."""
        while not self._stopping:
            try:
                await self._worker.run()  # type: ignore[no-untyped-call]
            except Exception:
                log.exception("the queue worker stopped; it starts again")
            else:
                if not self._stopping:
                    log.warning("the queue worker stopped unasked; it starts again")
            if not self._stopping:
                await asyncio.sleep(self._options.restart_after_s)

    def stop(self) -> None:
        self._stopping = True
        self._worker.stop()  # type: ignore[no-untyped-call]

    async def _execute_job(
        self, context: procrastinate.JobContext, experiment_id: str, number: int, run_id: str
    ) -> None:
        runs = self._runs
        key = IterationKey(experiment_id, number)
        iteration = await self._iteration(key)
        # A duplicate job, a retry of a run that finished meanwhile, or a run whose cancel was
        # requested only pokes the closer: the worker that finished the run may have died
        # before the iteration was checked.
        first_attempt = context.job.attempts == 0
        run = await asyncio.to_thread(
            runs.start_queued_run, iteration, run_id, first_attempt=first_attempt
        )
        if run is not None:
            await self._work_on(iteration, iteration.planned(run_id), run)
        self._closer.poke(key)

    async def _iteration(self, key: IterationKey) -> Iteration:
        """The iteration as planned (its runs and frozen definitions never change), loaded once
        while its jobs keep coming."""
        recent = self.recent_iterations
        if key in recent:
            recent.move_to_end(key)
            return recent[key]
        iteration = await asyncio.to_thread(self._runs.load_iteration, *key)
        recent[key] = iteration
        while len(recent) > RECENT_ITERATIONS:
            recent.popitem(last=False)
        return iteration

    async def _work_on(self, iteration: Iteration, planned: PlannedRun, run: Run) -> None:
        runs = self._runs
        execution = asyncio.create_task(self._execution.attempt(iteration, planned, run))
        watcher = asyncio.create_task(self._cancel_on_request(iteration, execution))
        try:
            await asyncio.shield(execution)
        except asyncio.CancelledError:
            if not execution.cancelled():
                execution.cancel()  # the worker is shutting down: the job is retried
                with contextlib.suppress(asyncio.CancelledError):
                    await execution
                raise
            # Cancelled by the iteration's cancel request.
            await asyncio.to_thread(runs.cancel_run, iteration, planned.run_id)
        finally:
            watcher.cancel()

    async def _cancel_on_request(self, iteration: Iteration, execution: asyncio.Task[None]) -> None:
        views = self._runs.views
        while not execution.done():
            await asyncio.sleep(self._options.cancel_poll_s)
            requested = await asyncio.to_thread(
                views.cancel_requested, iteration.experiment_id, iteration.number
            )
            if requested:
                execution.cancel()
                return

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await requeue_stalled(self.queue, silent_for_s=self._options.stalled_after_s)
                await self._sweeping.resume()
                for row in await asyncio.to_thread(self._runs.views.open_iterations):
                    self._closer.poke(IterationKey(row["experiment_id"], row["number"]))
            except Exception:
                log.exception("queue sweep failed; trying again")
            await asyncio.sleep(self._options.sweep_interval_s)
