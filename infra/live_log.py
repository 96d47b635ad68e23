"""Live run logs: the messages a runner reports while it works, saved as `Run.MessagesRecorded`
events in small batches so `tpc sim run logs RUN --follow` (and the dashboard) can show a run
as it happens, whichever process or machine executes it.

Live messages are abridged (long texts cut) to keep events small; the complete transcript is
stored with the run's outcome and supersedes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tpc.live_log")

MAX_LIVE_TEXT = 2_000
FLUSH_INTERVAL_S = 0.5

Save = Callable[[int, list[dict[str, Any]]], None]


class LiveLog:
    """A `RunProgress` that batches messages and saves them off the event loop.

    `save(first, messages)` runs in a thread; a failing save (the run was taken over by
    another attempt, the store away) stops the live log, never the run."""

    def __init__(self, save: Save, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self._save = save
        self._interval = interval_s
        self._pending: list[dict[str, Any]] = []
        self._saved = 0
        self._broken = False
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # Everything reported, unabridged: a run cut off by its time limit keeps what it did.
        self.reported: list[dict[str, Any]] = []

    def message(self, message: dict[str, Any]) -> None:
        self.reported.append(message)
        if self._broken:
            return
        self._pending.append(abridge(message))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever())
        self._wake.set()

    async def close(self) -> None:
        """Stop flushing; messages not yet saved are dropped (the transcript has them)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None

    async def _flush_forever(self) -> None:
        while not self._broken:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            saving = asyncio.ensure_future(asyncio.to_thread(self._save, self._saved, batch))
            try:
                await asyncio.shield(saving)
            except asyncio.CancelledError:
                # A save in a thread cannot be interrupted: let it land before `close()`
                # returns, or it would race the run's outcome, saved next on the same aggregate.
                await asyncio.wait([saving])
                if not saving.cancelled() and saving.exception() is not None:
                    log.warning("live log stopped: %s", saving.exception())
                raise
            except Exception as error:
                log.warning("live log stopped: %s", error)
                self._broken = True
                return
            self._saved += len(batch)
            await asyncio.sleep(self._interval)


def abridge(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of a transcript message with long texts cut to `MAX_LIVE_TEXT` characters."""
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": _cut(content)}
    if not isinstance(content, list):
        return dict(message)
    blocks = []
    for block in content:
        if not isinstance(block, dict):
            continue
        block = dict(block)
        for field in ("text", "thinking"):
            if isinstance(block.get(field), str):
                block[field] = _cut(block[field])
        if isinstance(block.get("content"), str):
            block["content"] = _cut(block["content"])
        blocks.append(block)
    return {**message, "content": blocks}


def _cut(text: str) -> str:
    if len(text) <= MAX_LIVE_TEXT:
        return text
    return text[:MAX_LIVE_TEXT] + f"… [{len(text) - MAX_LIVE_TEXT} more characters]"
