"""Run recording: what the executors and queue workers do to the log as runs execute (open and
start a run, its live messages, its outcome, a cancel) and closing an iteration once no run
is left (its failing runs clustered).

The executors' saves skip the catch-up: nobody waits to read them at once, and the log follower
folds them into the views in batches (one transaction for many runs).
"""

from __future__ import annotations

import json

from eventsourcing.persistence import IntegrityError

from application.live_log import LiveBatch
from application.saving import Saver
from domain.clusters import FailingRun, cluster_failures, suggestions
from domain.errors import Conflict, NotFound
from domain.ids import iteration_stream_id, stream_id
from domain.iterations import Iteration
from domain.runs import RecordedStats, Run
from domain.signals.extraction import ExtractedSignals
from domain.transcripts import parse_transcript
from infra.llm.cluster_writer import ClusterWriter
from infra.store.blobs import BlobStore
from infra.store.events import EventStore
from infra.store.secrets import SecretStore
from projections.follower import Projector
from projections.queries import Views


class RunRecording:
    """The executors' side of the application. `views` and `blobs` are what they read
    (open iterations, unfinished runs, cancel requests; stored transcripts for the runners)."""

    def __init__(
        self,
        store: EventStore,
        saver: Saver,
        projector: Projector,
        views: Views,
        blobs: BlobStore,
        secrets: SecretStore,
        cluster_writer: ClusterWriter,
    ) -> None:
        self._store = store
        self._saver = saver
        self._projector = projector
        self.views = views
        self.blobs = blobs
        self._secrets = secrets
        self.cluster_writer = cluster_writer

    def _iteration(self, exp_id: str, number: int) -> Iteration:
        return self._store.load(
            Iteration, iteration_stream_id(exp_id, number), f"{exp_id} iteration {number}"
        )

    def load_iteration(self, exp_id: str, number: int) -> Iteration:
        return self._iteration(exp_id, number)

    def complete_iteration_if_done(self, exp_id: str, number: int) -> bool:
        """Close the iteration when no run is left queued or running: its failing runs are
        clustered and the clusters recorded in the same save as the completion."""
        self._projector.catch_up_to_head()
        if self.views.count_unfinished_runs(exp_id, number):
            return False
        iteration = self._iteration(exp_id, number)
        found = [c.recorded() for c in cluster_failures(self._failing_runs(iteration))]
        # With a cluster model configured, it names the clusters and writes causes and fixes.
        clusters = self.cluster_writer.write_blocking(found).clusters

        def command() -> bool:
            iteration = self._iteration(exp_id, number)
            if iteration.status != "running":
                return False
            iteration.record_clusters(clusters, suggestions(clusters))
            iteration.complete()
            self._saver.save(iteration)
            return True

        return self._saver.retrying(command)

    def _failing_runs(self, iteration: Iteration) -> list[FailingRun]:
        """What clustering needs of each failed, errored or timed-out run. Stats signals are
        not "fired": every run has a duration; patterns and judges tell something."""
        frozen = iteration.signal_config
        telling = {
            signal.id
            for signal in (frozen.parsed.signals if frozen else [])
            if signal.extract.method != "stats"
        }
        rows = self.views.failing_runs(iteration.experiment_id, iteration.number)
        refs = [row["transcript_ref"] for row in rows if row["transcript_ref"]]
        # Read together: a query per failing run was most of an iteration's closing on
        # PostgreSQL, a round trip each.
        transcripts = {ref: parse_transcript(data, ref) for ref, data in self.blobs.get_many(refs)}
        failing = []
        for row in rows:
            ref = row["transcript_ref"]
            values = json.loads(row["signal_values"] or "{}")
            failing.append(
                FailingRun(
                    run_id=row["id"],
                    task_id=row["task_id"],
                    environment_id=row["environment_id"],
                    status=row["status"],
                    termination_reason=row["termination_reason"],
                    error=row["error"],
                    task_name=iteration.tasks[row["task_id"]].name,
                    environment_name=iteration.environments[row["environment_id"]].name,
                    transcript=transcripts[ref] if ref else None,
                    fired_signals=tuple(
                        sorted(
                            sid
                            for sid, value in values.items()
                            if sid in telling
                            and (value is True or (type(value) in (int, float) and value > 0))
                        )
                    ),
                )
            )
        return failing

    def _run(self, iteration: Iteration, run_id: str) -> Run:
        recorded = self.recorded_run(run_id)
        return recorded if recorded is not None else _planned_run(iteration, run_id)

    def start_run(self, iteration: Iteration, run_id: str) -> Run:
        run = self._run(iteration, run_id)
        run.start()
        self._store.save(run)
        return run

    def start_queued_run(
        self, iteration: Iteration, run_id: str, *, first_attempt: bool = False
    ) -> Run | None:
        """A queued job's run, started anew; None when there is nothing to execute: the run
        has its final outcome (a duplicate job, or a retry of a run that finished meanwhile,
        read from its own stream, not from the views, which another process may not have
        caught up yet), or its iteration's cancel was requested (the run is then recorded as
        cancelled). A job's `first_attempt` skips reading the run's stream, which is empty
        but for a duplicate job: its save then conflicts, and the stream is read after all.
        A worker pays these round trips per run."""
        cancel = self.views.cancel_requested(iteration.experiment_id, iteration.number)
        if first_attempt:
            try:
                return self._start_or_cancel(_planned_run(iteration, run_id), cancel)
            except IntegrityError:
                pass  # the run's stream exists
        run = self._run(iteration, run_id)
        if run.is_terminal:
            return None
        return self._start_or_cancel(run, cancel)

    def _start_or_cancel(self, run: Run, cancel: bool) -> Run | None:
        if cancel:
            run.cancel()
        else:
            run.start()
        self._store.save(run)
        return None if run.is_terminal else run

    def record_live_messages(self, batch: LiveBatch) -> list[Run]:
        """Save live messages of running attempts (`Run.MessagesRecorded`), every run's in one
        transaction. A conflict means another attempt took a run over: then each run's are
        saved alone, and the runs refused are returned (their live logs stop)."""
        events_by_run, refused = [], []
        for run, first, messages in batch:
            try:
                run.record_messages(first, messages)
            except Conflict:  # it ended meanwhile (cancelled)
                refused.append(run)
                continue
            events_by_run.append((run, run.collect_events()))
        try:
            self._store.save(*(event for _, events in events_by_run for event in events))
            return refused
        except IntegrityError:
            for run, events in events_by_run:
                try:
                    self._store.save(*events)
                except IntegrityError:
                    refused.append(run)
            return refused

    def finish_run(
        self,
        run: Run,
        status: str,
        termination_reason: str | None,
        stats: RecordedStats,
        transcript: bytes | None,
        error: str | None,
        signals: ExtractedSignals | None,
        transcript_ref: str | None = None,
    ) -> None:
        """Record the outcome and the extracted signals of an attempt, in one save.
        `transcript_ref`: a transcript already stored (a re-score's), in place of `transcript`."""
        ref = self.blobs.put(transcript) if transcript is not None else transcript_ref
        run.complete(status, termination_reason, stats, ref, error)
        if signals is not None:
            run.record_signals(signals.config_hash, signals.values)
        self._store.save(run)

    def recorded_run(self, run_id: str) -> Run | None:
        """A run as its stream records it (a re-score's source run); None if never opened."""
        try:
            return self._store.load(Run, stream_id(run_id), f"run {run_id}")
        except NotFound:
            return None

    def cancel_run(self, iteration: Iteration, run_id: str) -> None:
        """Record the run as cancelled, unless it ended first. A cancel stops the run's task,
        not a thread already saving for it (its start, its live messages): a save that lands
        meanwhile makes this one conflict, and it is made again on the run as it now stands."""

        def command() -> None:
            run = self._run(iteration, run_id)
            if not run.is_terminal:
                run.cancel()
                self._store.save(run)

        self._saver.retrying(command)

    def product_secrets(self, product: str) -> dict[str, str]:
        """The values, for the runners of this product's runs (never shown by any route)."""
        return self._secrets.values(product)


def _planned_run(iteration: Iteration, run_id: str) -> Run:
    """A run as its iteration planned it, before anything was recorded of it."""
    planned = iteration.planned(run_id)
    return Run(
        run_id=run_id,
        experiment_id=iteration.experiment_id,
        number=iteration.number,
        task_id=planned.task_id,
        environment_id=planned.environment_id,
        repeat=planned.repeat,
    )
