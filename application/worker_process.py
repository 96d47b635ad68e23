"""A `tpc worker` process: the store, the runners, the judge and the queue, wired together."""

from __future__ import annotations

import asyncio
import os

import procrastinate

from application.queue_worker import QueueWorker, WorkerOptions
from application.run_execution import RunExecution
from application.run_recording import RunRecording
from application.service import Service
from infra.llm.judge import LlmJudge
from infra.run_queue import open_queue
from infra.runners.registry import build_runners
from infra.settings import Settings, SettingsError


def worker_options(settings: Settings) -> WorkerOptions:
    """Options from the settings and the TPC_WORKER_* variables (seconds)."""
    timings: dict[str, float] = {}
    for field, variable in (
        ("heartbeat_s", "TPC_WORKER_HEARTBEAT_S"),
        ("stalled_after_s", "TPC_WORKER_STALLED_AFTER_S"),
        ("sweep_interval_s", "TPC_WORKER_SWEEP_INTERVAL_S"),
        ("shutdown_grace_s", "TPC_WORKER_SHUTDOWN_GRACE_S"),
    ):
        raw = os.environ.get(variable)
        if raw:
            try:
                timings[field] = float(raw)
            except ValueError:
                raise SettingsError(
                    f"{variable} must be a number of seconds (got {raw!r})"
                ) from None
            if timings[field] <= 0:
                raise SettingsError(f"{variable} must be positive (got {raw!r})")
    return WorkerOptions(concurrency=settings.concurrency, **timings)


def open_worker_queue(settings: Settings) -> procrastinate.App:
    """The queue app a worker uses: a small pool, grown a little with its concurrency."""
    return open_queue(settings.database_url, pool_size=min(8, 2 + settings.concurrency // 8))


def build_worker(
    runs: RunRecording,
    settings: Settings,
    queue: procrastinate.App,
    *,
    install_signal_handlers: bool,
) -> QueueWorker:
    """A queue worker recording through `runs`; `queue` must be open (`open_async`) when it
    runs."""
    execution = RunExecution(runs, build_runners(runs.blobs.get), LlmJudge())
    worker = QueueWorker(
        runs,
        execution,
        queue,
        worker_options(settings),
        install_signal_handlers=install_signal_handlers,
    )
    return worker


async def run_worker(settings: Settings) -> None:
    """Execute runs until SIGTERM/SIGINT."""
    service = await asyncio.to_thread(Service, settings)
    try:
        queue = open_worker_queue(settings)
        async with queue.open_async():
            worker = build_worker(service.runs, settings, queue, install_signal_handlers=True)
            await worker.run()
    finally:
        await asyncio.to_thread(service.close)
