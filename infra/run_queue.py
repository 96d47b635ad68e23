"""The distributed run queue on PostgreSQL (docs/spec.md §9; docs/architecture.md, the event flow,
step 2).

Each run of an iteration is one procrastinate job (`tpc.execute_run`) that any worker reaching
the database may take: a `tpc worker`, or the in-process worker of a `tpc serve`. Jobs carry a
`lock` and a `queueing_lock` named after the run, so a run is never executed by two workers at
once and never waits in the queue twice; enqueuing is therefore idempotent, which lets a
periodic sweep re-enqueue whatever a crash between saving an iteration and enqueuing its runs
left behind. A worker that dies mid-run stops sending heartbeats; the sweep sends its jobs back
to the queue, and the next attempt is a new `Run.Started`. The run's stream version guards the
outcome: a stale attempt's save conflicts and is dropped, so no run completes twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import procrastinate
from procrastinate import exceptions as queue_errors

from domain.iteration_key import IterationKey

log = logging.getLogger("tpc.queue")

TASK_NAME = "tpc.execute_run"
QUEUE_NAME = "runs"
# Each worker connection plans procrastinate's fetch query once. Planned while the queue was
# near empty, it scans every queued job on each fetch (~0.5 s a fetch with 10,000 queued) until
# the table's statistics change: after queueing this many, the dispatcher refreshes them at
# once rather than leaving it to autovacuum (a minute later, or never where it is off).
ANALYZE_AFTER_JOBS = 500


def open_queue(database_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """A procrastinate app on the store's PostgreSQL database (open it with `open_async`)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=database_url, min_size=1, max_size=pool_size
    )
    return procrastinate.App(connector=connector)


# The session lock under which one process creates the queue's tables.
SCHEMA_LOCK_KEY = 7406201

# Iterations whose runs were all queued: the sweep queues the runs of any other running one.
DISPATCHED_TABLE = """
CREATE TABLE IF NOT EXISTS tpc_dispatched_iterations (
    experiment_id TEXT NOT NULL, number INTEGER NOT NULL, PRIMARY KEY (experiment_id, number))
"""


async def ensure_queue_schema(app: procrastinate.App) -> bool:
    """Create the queue's tables on first start; True when they were created now."""
    # Two processes starting at once on an empty database: one creates, the other waits (even
    # `CREATE TABLE IF NOT EXISTS` fails when it races another). The lock is the session's, so
    # it is taken and let go on one connection held throughout.
    connector: procrastinate.PsycopgConnector = app.connector  # type: ignore[assignment]
    async with connector.pool.connection() as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            await connection.execute(DISPATCHED_TABLE)
            found = await connection.execute("SELECT to_regclass('procrastinate_jobs') IS NULL")
            missing = await found.fetchone()
            await connection.commit()  # the table is there for whoever takes the lock next
            if not (missing and missing[0]):
                return False
            await app.schema_manager.apply_schema_async()
            return True
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


MARK_DISPATCHED = (
    "INSERT INTO tpc_dispatched_iterations (experiment_id, number)"
    " VALUES (%(experiment_id)s, %(number)s) ON CONFLICT DO NOTHING"
)


async def mark_dispatched(app: procrastinate.App, experiment_id: str, number: int) -> None:
    await app.connector.execute_query_async(
        MARK_DISPATCHED, experiment_id=experiment_id, number=number
    )


async def dispatched_iterations(app: procrastinate.App) -> set[IterationKey]:
    rows = await app.connector.execute_query_all_async(
        "SELECT experiment_id, number FROM tpc_dispatched_iterations"
    )
    return {IterationKey(row["experiment_id"], row["number"]) for row in rows}


def _run_job(app: procrastinate.App, experiment_id: str, number: int, run_id: str) -> Any:
    return app.configure_task(
        TASK_NAME, queue=QUEUE_NAME, lock=run_id, queueing_lock=run_id
    ).job.evolve(task_kwargs={"experiment_id": experiment_id, "number": number, "run_id": run_id})


async def dispatch_runs(
    app: procrastinate.App, experiment_id: str, number: int, run_ids: Iterable[str]
) -> int:
    """Queue one job per run, skipping runs already waiting, and mark the iteration dispatched.
    Returns how many jobs were added.

    Both in one transaction when none is waiting (a trigger's case): three round trips fewer
    than a queue call each, on the event loop that answers requests. Otherwise (a sweep after
    a crash) the jobs one by one, then the mark."""
    jobs = [_run_job(app, experiment_id, number, run_id) for run_id in run_ids]
    connector: procrastinate.PsycopgConnector = app.connector  # type: ignore[assignment]
    try:
        async with connector.pool.connection() as connection, connection.transaction():
            if jobs:
                await app.job_manager.batch_defer_jobs_async(jobs, connection=connection)
            await connection.execute(
                MARK_DISPATCHED, {"experiment_id": experiment_id, "number": number}
            )
        added = len(jobs)
    except queue_errors.AlreadyEnqueued:
        added = 0
        for job in jobs:
            try:
                await app.job_manager.defer_job_async(job)
                added += 1
            except queue_errors.AlreadyEnqueued:
                continue
        await mark_dispatched(app, experiment_id, number)
    if added >= ANALYZE_AFTER_JOBS:
        await app.connector.execute_query_async("ANALYZE procrastinate_jobs")
    return added


async def requeue_stalled(app: procrastinate.App, *, silent_for_s: float) -> int:
    """Send back to the queue the jobs of workers that stopped sending heartbeats (killed,
    frozen, or cut off from the database). Returns how many."""
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=TASK_NAME, seconds_since_heartbeat=silent_for_s
    )
    count = 0
    for job in stalled:
        log.warning("run job %s of a silent worker goes back to the queue", job.id)
        await app.job_manager.retry_job(job)
        count += 1
    await app.job_manager.prune_stalled_workers(seconds_since_heartbeat=silent_for_s)
    return count
