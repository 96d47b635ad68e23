"""The queue worker in-process on the real PostgreSQL server: it works an iteration's jobs off
and closes the iteration, and it closes an iteration whose last run ended in a worker that
died before checking (the crash window between a run's outcome and the completion check)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
import pytest

from application import queue_worker
from application.queue_worker import QueueDispatcher, QueueWorker, WorkerOptions
from application.run_execution import RunExecution
from application.service import Service
from domain.iteration_key import IterationKey
from infra.run_queue import (
    ANALYZE_AFTER_JOBS,
    QUEUE_NAME,
    SCHEMA_LOCK_KEY,
    IdleCheck,
    QueueStatistics,
    dispatch_runs,
    dispatched_iterations,
    ensure_queue_schema,
    mark_dispatched,
    open_queue,
)
from infra.runners.base import Runner
from infra.runners.replay import ReplayRunner
from infra.runners.scripted import ScriptedRunner
from infra.settings import Settings
from tests.eventually import eventually_async
from tests.integration.test_service import setup_replay

# Only guards against a hang (the suite's timeout is the real limit): never asserted.
PATIENCE_S = 60
FAST = WorkerOptions(concurrency=4, sweep_interval_s=0.2, completion_check_s=0.1)


@pytest.fixture
def service(postgres_url: str) -> Iterator[Service]:
    svc = Service(Settings(database_url=postgres_url))
    yield svc
    svc.close()


@contextlib.asynccontextmanager
async def ready_queue(postgres_url: str) -> AsyncIterator[procrastinate.App]:
    """A queue app of its own (an app takes one worker's task), open, its tables there."""
    queue = open_queue(postgres_url)
    async with queue.open_async():
        await ensure_queue_schema(queue)
        yield queue


def execution(service: Service) -> RunExecution:
    runners: dict[str, Runner] = {
        "replay": ReplayRunner(service.blobs.get),
        "scripted": ScriptedRunner(),
    }
    return RunExecution(service.runs, runners)


def fast_worker(service: Service, queue: Any) -> QueueWorker:
    return QueueWorker(service.runs, execution(service), queue, FAST, install_signal_handlers=False)


async def work_until_closed(
    service: Service,
    worker: QueueWorker,
    exp_id: str,
    number: int = 1,
    working: asyncio.Task[None] | None = None,
) -> str:
    """Run the worker (or let `working`, its run, go on) until the iteration leaves
    `running`; its final status."""
    working = working or asyncio.create_task(worker.run())

    def closed() -> str | None:
        service.projector.catch_up()
        status = service.runs.load_iteration(exp_id, number).status
        return status if status != "running" or working.done() else None

    try:
        await eventually_async(
            lambda: asyncio.to_thread(closed),
            what=f"iteration {number} of {exp_id} closed",
            timeout=PATIENCE_S,
            interval=0.1,
        )
    finally:
        worker.stop()
        await asyncio.gather(working, return_exceptions=True)
    return service.runs.load_iteration(exp_id, number).status


def test_a_worker_executes_the_jobs_and_closes_the_iteration(
    service: Service, postgres_url: str
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    service.experiments.trigger(owner, exp_id)

    async def scenario() -> str:
        async with ready_queue(postgres_url) as queue:
            await QueueDispatcher(service.runs, queue).submit(exp_id, 1)
            worker = fast_worker(service, queue)
            return await work_until_closed(service, worker, exp_id)

    assert asyncio.run(scenario()) == "completed"
    status = service.views.iteration_status(owner, exp_id, 1)
    assert status.runs.total == 12
    assert status.runs.queued == status.runs.running == 0


def test_a_worker_keeps_only_the_iterations_it_used_last(
    service: Service, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-lived worker meets every iteration there is: it must not hold them all."""
    monkeypatch.setattr(queue_worker, "RECENT_ITERATIONS", 2)
    owner, exp_id, _, _ = setup_replay(service)
    for _ in range(3):
        service.experiments.trigger(owner, exp_id)

    async def scenario() -> list[int]:
        async with ready_queue(postgres_url) as queue:
            for number in (1, 2, 3):
                await QueueDispatcher(service.runs, queue).submit(exp_id, number)
            worker = fast_worker(service, queue)
            # Jobs are taken in the order queued: iteration 3's come last.
            assert await work_until_closed(service, worker, exp_id, 3) == "completed"
            return [key.number for key in worker.recent_iterations]

    assert asyncio.run(scenario()) == [2, 3]


def test_a_worker_executes_a_rescore_without_any_runner(
    service: Service, postgres_url: str
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    service.experiments.trigger(owner, exp_id)

    async def work(run: RunExecution, number: int) -> str:
        async with ready_queue(postgres_url) as queue:
            await QueueDispatcher(service.runs, queue).submit(exp_id, number)
            worker = QueueWorker(service.runs, run, queue, FAST, install_signal_handlers=False)
            return await work_until_closed(service, worker, exp_id, number)

    async def scenario() -> tuple[str, str]:
        first = await work(execution(service), 1)
        await asyncio.to_thread(service.experiments.rescore, owner, exp_id, 1)
        # No runner at all: a run that asked for one would be errored.
        return first, await work(RunExecution(service.runs, {}), 2)

    assert asyncio.run(scenario()) == ("completed", "completed")
    source, rescore = (service.views.iteration_status(owner, exp_id, n) for n in (1, 2))
    assert rescore.rescore_of == 1 and rescore.runs == source.runs
    assert rescore.runs.errored == 0


def test_an_iteration_whose_last_worker_died_before_checking_is_closed_by_the_sweep(
    service: Service, postgres_url: str
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    service.experiments.trigger(owner, exp_id)
    iteration = service.runs.load_iteration(exp_id, 1)

    async def scenario() -> str:
        # Every run executed and recorded, then the process "died": no completion check, and
        # the iteration is marked dispatched, so no job will ever come for it again.
        run = execution(service)
        for planned in iteration.runs:
            await run.execute(iteration, planned)
        async with ready_queue(postgres_url) as queue:
            await mark_dispatched(queue, exp_id, 1)
            await asyncio.to_thread(service.projector.catch_up)
            assert (await asyncio.to_thread(service.runs.load_iteration, exp_id, 1)).status == (
                "running"
            )
            worker = fast_worker(service, queue)
            return await work_until_closed(service, worker, exp_id)

    assert asyncio.run(scenario()) == "completed"
    assert service.views.iteration_status(owner, exp_id, 1).runs.queued == 0


def test_a_worker_whose_registration_was_pruned_registers_again_and_goes_on(
    service: Service, postgres_url: str
) -> None:
    """A worker whose heartbeat fell behind (a slow database, a starved event loop) is pruned
    by a sweep although alive: procrastinate then fails its every fetch (its id is gone), and
    the worker used to stop for good while the server went on answering: no run ran again."""
    owner, exp_id, _, _ = setup_replay(service)
    service.experiments.trigger(owner, exp_id)

    async def scenario() -> str:
        async with ready_queue(postgres_url) as queue:
            worker = fast_worker(service, queue)
            working = asyncio.create_task(worker.run())

            async def registered() -> bool:
                row = await queue.connector.execute_query_one_async(
                    "SELECT COUNT(*) AS n FROM procrastinate_workers"
                )
                return bool(row["n"])

            await eventually_async(registered, what="the worker registered", timeout=PATIENCE_S)
            await queue.job_manager.prune_stalled_workers(seconds_since_heartbeat=-60)
            await QueueDispatcher(service.runs, queue).submit(exp_id, 1)
            return await work_until_closed(service, worker, exp_id, working=working)

    assert asyncio.run(scenario()) == "completed"


def test_queueing_refreshes_the_queues_statistics_after_every_few_hundred_jobs(
    postgres_url: str,
) -> None:
    """Workers plan the fetch query once; planned over an empty queue it would scan every job
    on each fetch until the statistics change. Triggers queue a few jobs at a time, so the
    jobs are counted across iterations."""

    async def last_analyzed(queue: Any) -> Any:
        row = await queue.connector.execute_query_one_async(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'"
        )
        return row["last_analyze"]

    async def scenario() -> list[Any]:
        statistics = QueueStatistics()
        seen = []
        async with ready_queue(postgres_url) as queue:
            for number in range(1, ANALYZE_AFTER_JOBS // 4 + 1):
                runs = [f"run_{number}_{i}" for i in range(4)]
                await dispatch_runs(queue, "exp", number, runs, statistics)
                if number == ANALYZE_AFTER_JOBS // 4 - 1:
                    seen.append(await last_analyzed(queue))  # 4 jobs short
            seen.append(await last_analyzed(queue))
            # Queued again (a sweep after a crash): nothing added, nothing to refresh.
            await dispatch_runs(queue, "exp", 1, [f"run_1_{i}" for i in range(4)], statistics)
            seen.append(await last_analyzed(queue))
            # Both paths (all new in one transaction, or one by one) mark it dispatched.
            assert await dispatched_iterations(queue) >= {
                IterationKey("exp", 1),
                IterationKey("exp", ANALYZE_AFTER_JOBS // 4),
            }
        return seen

    short, reached, again = asyncio.run(scenario())
    assert short is None
    assert reached is not None
    assert again == reached


def test_a_dispatch_queues_only_the_runs_not_waiting_and_marks_the_iteration(
    postgres_url: str,
) -> None:
    """A trigger's jobs and mark go in one statement; where a run is already waiting (a sweep
    after a crash) that statement is refused whole, and the rest are queued one by one."""

    async def scenario() -> tuple[int, int, set[IterationKey], list[str]]:
        statistics = QueueStatistics()
        async with ready_queue(postgres_url) as queue:
            first = await dispatch_runs(queue, "exp", 1, ["run_a", "run_b"], statistics)
            again = await dispatch_runs(queue, "exp", 2, ["run_b", "run_c"], statistics)
            rows = await queue.connector.execute_query_all_async(
                "SELECT lock FROM procrastinate_jobs ORDER BY lock"
            )
            return first, again, await dispatched_iterations(queue), [r["lock"] for r in rows]

    first, again, marked, locks = asyncio.run(scenario())
    assert (first, again) == (2, 1)
    assert marked == {IterationKey("exp", 1), IterationKey("exp", 2)}
    assert locks == ["run_a", "run_b", "run_c"]


def fetch_blocks(connection: psycopg.Connection[Any], worker_id: int) -> int:
    """Blocks one fetch of a job reads (procrastinate's own query, rolled back)."""
    with connection.transaction(force_rollback=True):
        plan = connection.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)"
            " SELECT id FROM procrastinate_fetch_job_v2(%s, %s)",
            ([QUEUE_NAME], worker_id),
        ).fetchone()
    assert plan is not None
    top = plan[0][0]["Plan"]
    return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"])


def test_a_fetch_reads_a_few_blocks_a_queued_job_with_statistics_of_an_empty_queue(
    postgres_url: str,
) -> None:
    """procrastinate's fetch looks each queued job's lock up among the other jobs. Planned with
    statistics taken over an empty queue, its own (id, lock) index served that lookup by
    reading the whole index once a queued job: 0.1 s a fetch at 2,000 queued, 0.4 s at
    4,000, which kept a worker to a few runs at a time. With an index on the lock, each
    lookup reads a few blocks."""
    queued = 3000

    async def queue_jobs() -> None:
        async with ready_queue(postgres_url) as queue:
            await queue.connector.execute_query_async(
                "ALTER TABLE procrastinate_jobs SET (autovacuum_enabled = false)"
            )
            await queue.connector.execute_query_async("ANALYZE procrastinate_jobs")
            never = QueueStatistics(every=queued + 1)
            await dispatch_runs(queue, "exp", 1, [f"run_{i}" for i in range(queued)], never)

    asyncio.run(queue_jobs())
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        row = connection.execute(
            "INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id"
        ).fetchone()
        assert row is not None
        assert fetch_blocks(connection, row[0]) < 6 * queued  # without: 16 a job here


def test_two_processes_creating_the_queue_at_once_create_it_once_and_leave_no_lock(
    postgres_url: str,
) -> None:
    """The creation's lock is a session lock: taken and let go on one connection, or another
    process starting later would wait for it forever."""

    async def scenario() -> tuple[list[bool], int]:
        first, second = open_queue(postgres_url), open_queue(postgres_url)
        async with first.open_async(), second.open_async():
            created = await asyncio.gather(ensure_queue_schema(first), ensure_queue_schema(second))
            row = await first.connector.execute_query_one_async(
                "SELECT COUNT(*) AS held FROM pg_locks"
                " WHERE locktype = 'advisory' AND objid = %(key)s",
                key=SCHEMA_LOCK_KEY,
            )
            return sorted(created), row["held"]

    created, held = asyncio.run(scenario())
    assert created == [False, True]
    assert held == 0


def test_a_queue_connection_is_checked_only_when_taken_after_an_idle_spell(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check is a round trip through the event loop: a connection taken again at once
    goes without one, a connection idle for longer is checked as psycopg_pool checks it."""
    checked: list[int] = []
    real_check = psycopg_pool.AsyncConnectionPool.check_connection

    async def counted(connection: psycopg.AsyncConnection[Any]) -> None:
        checked.append(connection.info.backend_pid)
        await real_check(connection)

    monkeypatch.setattr(psycopg_pool.AsyncConnectionPool, "check_connection", counted)

    async def scenario() -> list[int]:
        check = IdleCheck(idle_s=0.2)
        async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
            await check(connection)  # never taken before
            await check(connection)  # at once
            await asyncio.sleep(0.3)
            await check(connection)  # after an idle spell
            return [connection.info.backend_pid] * 2

    assert checked == asyncio.run(scenario())


def test_queue_connections_broken_since_they_were_taken_fail_a_call_each_at_most(
    postgres_url: str,
) -> None:
    """Unchecked, a connection whose server side went away fails its call and is discarded;
    calls then get working connections (callers retry: a worker starts again, a sweep
    dispatches)."""

    async def backend(queue: Any) -> int:
        row = await queue.connector.execute_query_one_async("SELECT pg_backend_pid() AS pid")
        return int(row["pid"])

    async def scenario() -> tuple[int, int, int, int]:
        async with ready_queue(postgres_url) as queue:
            first = await backend(queue)
            held = queue.connector.pool.get_stats()["pool_size"]
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute(  # every connection of the queue's pool
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            failed = 0
            while failed <= held:
                try:
                    return first, await backend(queue), failed, held
                except procrastinate.exceptions.ConnectorException:
                    failed += 1
            raise AssertionError(f"{failed} calls failed with {held} connections broken")

    first, later, failed, held = asyncio.run(scenario())
    assert later != first
    assert 1 <= failed <= held
