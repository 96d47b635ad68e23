"""Live run logs: the messages runners report while they work, saved as `Run.MessagesRecorded`
events so `tpc sim run logs RUN --follow` (and the dashboard) can show a run as it happens,
whichever process or machine executes it.

One `LiveLogWriter` per executor saves the messages of *every* run in flight together: one
save per interval, however many runs report (a save per run and interval would make the event
table's lock, which every save takes, the bound of a busy worker). Live messages are abridged
(long texts cut) to keep events small; the complete transcript is stored with the run's
outcome and supersedes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tpc.live_log")

MAX_LIVE_TEXT = 2_000
FLUSH_INTERVAL_S = 0.5

# (run, index of the first message, messages) for each run with something to save.
LiveBatch = Sequence[tuple[Any, int, list[dict[str, Any]]]]
# Saves a batch in one transaction where it can; returns the runs whose messages could not be
# saved (another attempt took the run over). Raises when nothing could be saved.
SaveBatch = Callable[[LiveBatch], Sequence[Any]]


class LiveLog:
    """One run's `RunProgress`: collects what the runner reports for the writer to save.

    A failing save (the run was taken over by another attempt, the store away) stops the live
    log, never the run."""

    def __init__(self, writer: LiveLogWriter, run: Any) -> None:
        self._writer = writer
        self.run = run
        self.pending: list[dict[str, Any]] = []
        self.saved = 0
        self.broken = False
        # Everything reported, unabridged: a run cut off by its time limit keeps what it did.
        self.reported: list[dict[str, Any]] = []

    def message(self, message: dict[str, Any]) -> None:
        self.reported.append(message)
        if self.broken:
            return
        self.pending.append(abridge(message))
        self._writer.wake()

    async def close(self) -> None:
        """Stop saving; messages not yet saved are dropped (the transcript has them). A save
        already under way lands first: it would otherwise race the run's outcome, saved next
        on the same aggregate."""
        await self._writer.detach(self)


@dataclass(frozen=True)
class _Saving:
    """A save in flight, and the live logs whose messages it holds."""

    future: asyncio.Future[Sequence[Any]]
    logs: set[LiveLog]


class LiveLogWriter:
    """Saves the live logs of one executor's runs, all runs in one save per interval."""

    def __init__(self, save: SaveBatch, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self._save = save
        self._interval = interval_s
        self._open: dict[LiveLog, None] = {}  # an ordered set: runs saved in opening order
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._saving: _Saving | None = None

    def open(self, run: Any) -> LiveLog:
        live = LiveLog(self, run)
        self._open[live] = None
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever())
        return live

    def wake(self) -> None:
        self._wake.set()

    async def detach(self, live: LiveLog) -> None:
        self._open.pop(live, None)
        live.pending.clear()
        if self._saving is not None and live in self._saving.logs:
            saving = self._saving.future
            try:
                await asyncio.shield(saving)
            except asyncio.CancelledError:
                await asyncio.wait([saving])  # a thread's save cannot be interrupted
                raise
            except Exception:  # reported by the flusher
                pass

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            due = [live for live in self._open if live.pending and not live.broken]
            if due:
                await self._save_now(due)
                await asyncio.sleep(self._interval)

    async def _save_now(self, due: list[LiveLog]) -> None:
        batch = [(live.run, live.saved, live.pending) for live in due]
        for live in due:
            live.pending = []
        saving = asyncio.ensure_future(asyncio.to_thread(self._save, batch))
        self._saving = _Saving(saving, set(due))
        try:
            failed = await asyncio.shield(saving)
        except asyncio.CancelledError:
            await asyncio.wait([saving])  # let it land before the executor goes
            raise
        except Exception as error:
            log.warning("live logs of %d runs stopped: %s", len(due), error)
            for live in due:
                live.broken = True
            return
        finally:
            self._saving = None
        refused = {id(run) for run in failed}
        for live, (_, _, messages) in zip(due, batch, strict=True):
            if id(live.run) in refused:
                log.warning("live log stopped: run %s was taken over", live.run)
                live.broken = True
            else:
                live.saved += len(messages)


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
