"""Work an answer does not wait for: scheduling a new iteration's runs after the trigger's
answer is sent. The tasks are held until done (the event loop keeps only weak references),
a failure is logged rather than lost, and whoever owns them waits for them or cancels them
when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


class BackgroundWork:
    """Tasks started with `start`, each logged on `log` with `failure` if it raises."""

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()

    def __bool__(self) -> bool:
        """Whether some work is still in progress."""
        return bool(self._tasks)

    def start(self, work: Coroutine[Any, Any, None], failure: str) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, failure))

    async def wait(self) -> None:
        """Until all work is done, work started meanwhile included."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None], failure: str) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._log.error(failure, exc_info=error)
