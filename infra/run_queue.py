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
import time
import weakref
from collections.abc import Iterable
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import exceptions as queue_errors
from procrastinate.jobs import Job
from procrastinate.manager import QUEUEING_LOCK_CONSTRAINT

from domain.iteration_key import IterationKey

log = logging.getLogger("tpc.queue")

TASK_NAME = "tpc.execute_run"
QUEUE_NAME = "runs"
# Each worker connection plans procrastinate's fetch query once. Planned while the queue was
# near empty, it looks at every queued job on each fetch until the table's statistics change:
# after queueing this many jobs in all, a process refreshes them at once rather than leaving
# it to autovacuum (a minute later, or never where it is off).
ANALYZE_AFTER_JOBS = 500
# That fetch looks each queued job's lock up among the other jobs, which procrastinate's own
# index on (id, lock) serves only by reading all of it: once a queued job, 0.1 s a fetch at
# 2,000 queued and 0.4 s at 4,000 (procrastinate issue #1242). Ours serves it in a few blocks.
LOCK_INDEX = "tpc_procrastinate_jobs_lock"
CREATE_LOCK_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {LOCK_INDEX} ON procrastinate_jobs (lock, id)"
    " WHERE status IN ('todo', 'doing')"
)
# procrastinate checks each connection it takes from its pool with a round trip of its own, on
# the event loop: under load one more pass through a late loop for every queue call. A
# connection taken this recently was working then; only one idle longer is checked (the
# database may have restarted meanwhile). One that broke since fails its call, is discarded,
# and the call is retried as any failed one (a worker starts again, a sweep dispatches).
CHECK_AFTER_IDLE_S = 5.0


def open_queue(database_url: str, *, pool_size: int = 4) -> procrastinate.App:
    """A procrastinate app on the store's PostgreSQL database (open it with `open_async`)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=database_url, min_size=1, max_size=pool_size, pool_factory=_pool
    )
    return procrastinate.App(connector=connector)


def _pool(**options: Any) -> psycopg_pool.AsyncConnectionPool:
    """procrastinate's pool, with a connection check only after an idle spell."""
    return psycopg_pool.AsyncConnectionPool(**{**options, "check": IdleCheck()})


class IdleCheck:
    """A pool's `check`: psycopg_pool's own, for a connection not taken in the last
    `CHECK_AFTER_IDLE_S` (or never before)."""

    def __init__(self, idle_s: float = CHECK_AFTER_IDLE_S) -> None:
        self._idle_s = idle_s
        self._taken: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        now = time.monotonic()
        last = self._taken.get(connection)
        if last is None or now - last > self._idle_s:
            await psycopg_pool.AsyncConnectionPool.check_connection(connection)
        self._taken[connection] = now


# The session lock under which one process creates the queue's tables.
SCHEMA_LOCK_KEY = 7406201

# Iterations whose runs were all queued: the sweep queues the runs of any other running one.
DISPATCHED_TABLE = """
CREATE TABLE IF NOT EXISTS tpc_dispatched_iterations (
    experiment_id TEXT NOT NULL, number INTEGER NOT NULL, PRIMARY KEY (experiment_id, number))
"""


async def ensure_queue_schema(app: procrastinate.App) -> bool:
    """Create the queue's tables (and our index on them) on first start; True when the tables
    were created now."""
    # Two processes starting at once on an empty database: one creates, the other waits (even
    # `CREATE TABLE IF NOT EXISTS` fails when it races another). The lock is the session's, so
    # it is taken and let go on one connection held throughout.
    connector: procrastinate.PsycopgConnector = app.connector  # type: ignore[assignment]
    async with connector.pool.connection() as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            await connection.execute(DISPATCHED_TABLE)
            found = await connection.execute(
                "SELECT to_regclass('procrastinate_jobs') IS NULL,"
                f" to_regclass('{LOCK_INDEX}') IS NULL"
            )
            missing_tables, missing_index = await found.fetchone() or (True, True)
            await connection.commit()  # the table is there for whoever takes the lock next
            if missing_tables:
                await app.schema_manager.apply_schema_async()
            if missing_index:  # also on a queue created by an earlier version
                await connection.execute(CREATE_LOCK_INDEX)
                await connection.commit()
            return bool(missing_tables)
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


def _marked_defer(app: procrastinate.App, jobs: list[Job]) -> dict[str, Any]:
    """procrastinate's batch defer, with the iteration's dispatched mark inserted by the same
    statement (a data-modifying CTE): both are written, or neither (a run already waiting
    refuses the whole statement)."""
    # procrastinate's own query and `jobs` argument, taken from the method its batch defer
    # uses (private: the dispatch tests fail if a release changes it).
    defer = app.job_manager._defer_jobs_query_kwargs(jobs)
    return {**defer, "query": f"WITH marked AS ({MARK_DISPATCHED}) {defer['query']}"}


def _run_job(app: procrastinate.App, experiment_id: str, number: int, run_id: str) -> Job:
    return app.configure_task(
        TASK_NAME, queue=QUEUE_NAME, lock=run_id, queueing_lock=run_id
    ).job.evolve(task_kwargs={"experiment_id": experiment_id, "number": number, "run_id": run_id})


class QueueStatistics:
    """Counts the jobs a process queues, to refresh the queue table's statistics after every
    `every` of them (`ANALYZE_AFTER_JOBS`)."""

    def __init__(self, every: int = ANALYZE_AFTER_JOBS) -> None:
        self._every = every
        self._unanalyzed = 0

    async def queued(self, app: procrastinate.App, count: int) -> None:
        self._unanalyzed += count
        if self._unanalyzed >= self._every:
            self._unanalyzed = 0
            await app.connector.execute_query_async("ANALYZE procrastinate_jobs")


async def dispatch_runs(
    app: procrastinate.App,
    experiment_id: str,
    number: int,
    run_ids: Iterable[str],
    statistics: QueueStatistics,
) -> int:
    """Queue one job per run, skipping runs already waiting, and mark the iteration dispatched.
    Returns how many jobs were added (counted in `statistics`).

    Both in one statement when none is waiting (a trigger's case): on the event loop that
    answers requests, procrastinate's BEGIN, it and COMMIT, where the jobs and the mark took a
    round trip each. Otherwise (a sweep after a crash) the jobs one by one, then the mark."""
    jobs = [_run_job(app, experiment_id, number, run_id) for run_id in run_ids]
    try:
        if jobs:
            await app.connector.execute_query_all_async(
                **_marked_defer(app, jobs), experiment_id=experiment_id, number=number
            )
        else:
            await mark_dispatched(app, experiment_id, number)
        added = len(jobs)
    except queue_errors.UniqueViolation as error:
        if error.constraint_name != QUEUEING_LOCK_CONSTRAINT:
            raise
        added = 0
        for job in jobs:
            try:
                await app.job_manager.defer_job_async(job)
                added += 1
            except queue_errors.AlreadyEnqueued:
                continue
        await mark_dispatched(app, experiment_id, number)
    await statistics.queued(app, added)
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
