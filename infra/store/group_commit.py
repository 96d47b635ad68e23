"""Group commit: saves that arrive while another is being written go in one transaction.

Every append to the event log takes the table's lock and waits for its commit to reach the disk,
one transaction after the other (`infra/store/pg_recorder.py`). When many threads of a process
save at once (API requests, a worker's runs), the first writes alone; those arriving meanwhile
queue, and the next of them writes every queued save in one transaction: one lock, one flush,
however many saves. Nothing waits for a window to fill: a save that finds nobody writing is
written at once, so a quiet process pays nothing.

Each save keeps its own outcome. When the combined insert conflicts (another writer took one of
the versions: optimistic concurrency), nothing of it was written, and each save of the group is
written again alone, so that only the saves that conflict fail; an error about the database
(a lost connection, a lock timeout) is every save's error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from eventsourcing.persistence import IntegrityError

E = TypeVar("E")
Insert = Callable[[Sequence[E]], Sequence[int] | None]


class _Save(Generic[E]):
    __slots__ = ("done", "error", "events", "ids")

    def __init__(self, events: Sequence[E]) -> None:
        self.events = events
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> Sequence[int] | None:
        if self.error is not None:
            raise self.error
        return self.ids


class GroupCommit(Generic[E]):
    """Calls `insert` (one transaction) with the events of every save queued meanwhile;
    `insert` returns the notification ids of the events, in order."""

    def __init__(self, insert: Insert[E]) -> None:
        self._insert = insert
        self._changed = threading.Condition()
        self._queued: list[_Save[E]] = []
        self._writing = False
        # Transactions and saves written so far (the benchmarks report the ratio).
        self.transactions = 0
        self.saves = 0

    def insert(self, events: Sequence[E]) -> Sequence[int] | None:
        save = _Save(events)
        with self._changed:
            self._queued.append(save)
            while self._writing and not save.done:
                self._changed.wait()
            if save.done:
                return save.result()
            # Nobody is writing: this thread writes what is queued, its own save included.
            self._writing = True
            group, self._queued = self._queued, []
        try:
            self._write(group)
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()
        return save.result()

    def _write(self, group: list[_Save[E]]) -> None:
        self.saves += len(group)
        try:
            if len(group) == 1:
                self._write_alone(group[0])
                return
            try:
                ids = self._call([event for save in group for event in save.events])
            except IntegrityError:
                for save in group:
                    self._write_alone(save)
                return
            start = 0
            for save in group:
                end = start + len(save.events)
                save.ids = None if ids is None else ids[start:end]
                save.done = True
                start = end
        except BaseException as error:
            for save in group:
                if not save.done:
                    save.error, save.done = error, True
            raise

    def _write_alone(self, save: _Save[E]) -> None:
        try:
            save.ids = self._call(save.events)
        except Exception as error:
            save.error = error
        save.done = True

    def _call(self, events: Sequence[E]) -> Sequence[int] | None:
        self.transactions += 1
        ids = self._insert(events)
        if ids is not None and len(ids) != len(events):
            raise RuntimeError(f"the store returned {len(ids)} ids for {len(events)} events")
        return ids
