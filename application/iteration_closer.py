"""Closing iterations from a worker that sees only its own runs.

A queue worker cannot count an iteration's remaining runs itself (other workers execute the
rest), so it asks the views, which means catching them up first. Doing that after every run
serialised all workers on the projector's lock; instead each finished run *pokes* its
iteration, and the closer checks every poked iteration at most once per interval, in the
background. The worker's periodic sweep pokes every open iteration too, so an iteration whose
last run ended in a worker that died before checking is still closed by another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from application.run_recording import RunRecording
from domain.iteration_key import IterationKey

log = logging.getLogger("tpc.worker")


class IterationCloser:
    def __init__(self, runs: RunRecording, interval_s: float = 1.0) -> None:
        self._runs = runs
        self._interval = interval_s
        self._due: set[IterationKey] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self, key: IterationKey) -> None:
        """Check this iteration soon (within about one interval)."""
        self._due.add(key)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._close_forever())

    async def stop(self) -> None:
        """Stop checking; iterations poked but not yet checked are checked once more now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._check_due()

    async def _close_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._check_due()
            await asyncio.sleep(self._interval)

    async def _check_due(self) -> None:
        while self._due:
            key = min(self._due)
            self._due.discard(key)
            try:
                await asyncio.to_thread(self._runs.complete_iteration_if_done, *key)
            except Exception:
                # The database away, a conflicting save: the next poke or sweep tries again.
                log.exception("could not check whether iteration %s #%d is done", *key)
