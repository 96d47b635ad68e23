"""Following the event log: each batch of events and the new tracking position are written in
one transaction, so the views are always exactly the log up to that position.

The position is read inside the write transaction, after taking the projector's lock (SQLite:
the file's write lock; PostgreSQL: an advisory lock), so several processes can follow the same
log and write the same views: the second waits, then starts from where the first stopped, and
no event is applied twice.

The server calls `catch_up` right after each command (read-your-writes) and in a loop that
waits for news of other processes' events (`wait_for_events`): PostgreSQL's LISTEN/NOTIFY,
with a poll interval in case a notification is lost; SQLite has no notifications and polls.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

from infra.store.database import Connection, Database, LogWatcher
from infra.store.events import EventStore
from projections.run_rows import RunEventBatch
from projections.views import apply_events, create_schema, drop_views, handled

TRACKING_NAME = "views"
# Bump when a view's shape changes: stores built with another version rebuild on start.
VIEWS_VERSION = 5
SCHEMA_MARK = "views_schema"
BATCH = 500
# The rebuild is one transaction: it reads bigger batches, and lets the rows of iterations
# still open wait in memory across them so that most are written once, final. Up to about
# this many (~2 kB each with their signals: ~40 MB), enough for a 10,000-run iteration.
REBUILD_BATCH = 5000
REBUILD_OPEN_ROWS = 20_000


class Projector:
    def __init__(self, store: EventStore, database: Database) -> None:
        self._store = store
        self._database = database
        self._lock = threading.Lock()
        self._watcher: LogWatcher | None = None
        self._watcher_lock = threading.Lock()
        self._closed = False
        with database.write() as db:
            database.lock(db, TRACKING_NAME)
            create_schema(db, database)
            built_with = _position(db, SCHEMA_MARK)
        # The version the views were built with when this projector started (0: none yet).
        self.found_version = built_with
        self.rebuilt_on_start = built_with != VIEWS_VERSION
        if self.rebuilt_on_start:
            # The views are derived data: when their shape changes, rebuild them from the log.
            self.rebuild()

    def catch_up(self) -> int:
        """Apply every event not yet in the views; returns the position reached."""
        with self._lock:
            while True:
                with self._database.write() as db:
                    self._database.lock(db, TRACKING_NAME)
                    position = _position(db)
                    if not self._apply_batch(db, position):
                        return position

    def rebuild(self) -> int:
        """Drop every view and replay the whole log, in one transaction: readers see the old
        views or the new ones, never a half-built state (on PostgreSQL they wait for it)."""
        with self._lock, _old_objects_frozen(), self._database.write() as db:
            self._database.lock(db, TRACKING_NAME)
            drop_views(db)
            create_schema(db, self._database)
            _set_position(db, SCHEMA_MARK, VIEWS_VERSION)
            position = 0
            runs = RunEventBatch()
            while True:
                events, last = self._store.read_events(db, position, REBUILD_BATCH, handled)
                if last == position:
                    break
                apply_events(db, events, runs)
                runs.flush(db, keep_open=runs.open_rows <= REBUILD_OPEN_ROWS)
                position = last
            runs.flush(db)
            if position:
                _set_position(db, TRACKING_NAME, position)
            return position

    def position(self) -> int:
        row = self._database.read_one(
            "SELECT position FROM tracking WHERE name = ?", (TRACKING_NAME,)
        )
        return int(row[0]) if row else 0

    def wait_for_events(self, timeout: float) -> bool:
        """Block until another process may have appended events (True), or for `timeout`
        seconds (False). The first call starts listening."""
        with self._watcher_lock:
            if self._closed:
                return False
            if self._watcher is None:
                self._watcher = self._database.log_watcher(self._store.log_channel)
            watcher = self._watcher
        return watcher.wait(timeout)

    def _apply_batch(self, db: Connection, position: int) -> bool:
        events, last = self._store.read_events(db, position, BATCH, handled)
        apply_events(db, events)
        if last != position:
            _set_position(db, TRACKING_NAME, last)
        return last != position

    def close(self) -> None:
        with self._watcher_lock:
            self._closed = True
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()


@contextlib.contextmanager
def _old_objects_frozen() -> Iterator[None]:
    """The process's objects left out of garbage collections meanwhile (`gc.freeze`).

    A rebuild allocates millions of short-lived containers, which trigger full collections,
    and each would scan every object of the process; frozen, those are skipped (measured on
    the 200k-event benchmark: 1.1 s of collections without, 0.15 s with, in a ~10 s rebuild).
    Nothing is lost: they go back to the collector's oldest generation afterwards. Left alone
    if something else froze objects already."""
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _position(db: Connection, name: str = TRACKING_NAME) -> int:
    row = db.execute("SELECT position FROM tracking WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _set_position(db: Connection, name: str, position: int) -> None:
    db.execute(
        "INSERT INTO tracking (name, position) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (name, position),
    )
