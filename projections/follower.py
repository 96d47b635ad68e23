"""Following the event log: each batch of events and the new tracking position are written in
one transaction, so the views are always exactly the log up to that position.

The position is read inside the write transaction, after taking the projector's lock (SQLite:
the file's write lock; PostgreSQL: an advisory lock), so several processes can follow the same
log and write the same views: the second waits, then starts from where the first stopped, and
no event is applied twice.

The server calls `catch_up` right after each command (read-your-writes) and in a loop that
waits for news of other processes' events (`wait_for_events`): PostgreSQL's LISTEN/NOTIFY,
with a poll interval in case a notification is lost; SQLite has no notifications and polls.

An event the views cannot apply (text a store cannot hold, written by an older version; a
handler's bug) must not stall every tenant's views behind it. A batch is applied in one
transaction; when it fails on the data (not on the database: a lost connection or a full disk
is raised, and the batch retried later), it is applied again event by event, each in a
savepoint, and each event that still fails is recorded in `projection_failures` (position,
topic, error, time), logged and skipped. A rebuild retries every event and records again
whatever still fails. `status()` reports the position, the log's head and the failures.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from domain.safe_text import clean_text
from infra.store.database import Connection, Database, LogWatcher
from projections.event_log import EventLog, EventRow
from projections.run_rows import RunEventBatch
from projections.views import (
    FAILURES_TABLE,
    apply_events,
    create_schema,
    drop_views,
    handled,
    streams_with_rows,
)

log = logging.getLogger("tpc.projections")

TRACKING_NAME = "views"
# Bump when a view's shape changes: stores built with another version rebuild on start.
VIEWS_VERSION = 7
SCHEMA_MARK = "views_schema"
BATCH = 500
# The rebuild is one transaction: it reads bigger batches, and lets the rows of iterations
# still open wait in memory across them so that most are written once, final. Up to about
# this many (~2 kB each with their signals: ~40 MB), enough for a 10,000-run iteration.
REBUILD_BATCH = 5000
REBUILD_OPEN_ROWS = 20_000
# What `status()` lists of the failures (all are counted), and the longest error text kept.
LISTED_FAILURES = 100
MAX_ERROR_TEXT = 2000
HEALTH_MAX_AGE_S = 1.0
# How often a catch-up that found another process applying the log looks at its progress.
BUSY_WAIT_S = 0.005


class Projector:
    def __init__(self, store: EventLog, database: Database) -> None:
        self._store = store
        self._database = database
        self._lock = threading.Lock()
        self._watcher: LogWatcher | None = None
        self._watcher_lock = threading.Lock()
        self._closed = False
        self._health: tuple[float, dict[str, int]] | None = None
        # The views' position this process last saw them at (they never go back, except
        # through `rebuild`, which sets it again).
        self._reached = 0
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

    def catch_up(self, until: int | None = None) -> int:
        """Apply every event not yet in the views; returns the position reached. Events that
        cannot be applied are recorded and skipped (see the module's docstring).

        `until`: the caller needs the views only up to this position (its own save, or the
        log's head when it looked), and the catch-up ends with the batch that reaches it.
        Under load many threads save at once and each asks for a catch-up; the first one
        applies every save, and the others, finding the views there already, return at once
        instead of each opening a transaction that finds nothing to do. While another process
        holds the projector's lock, such a caller does not queue behind it (holding a
        connection, then catching up alone in turn): it watches the views' position, and
        returns as soon as the other process's catch-up reached `until`, or applies what is
        left once the lock is free."""
        if until is not None and self._reached >= until:
            return self._reached
        with self._lock:
            if until is not None and self._reached >= until:
                return self._reached
            while True:
                try:
                    reached = self._catch_up_batch(until)
                except Exception as error:
                    if self._database.is_transient(error):
                        raise
                    self._apply_next_batch_one_by_one()
                    continue
                if reached is not None:
                    self._reached = max(self._reached, reached)
                    return reached

    def _catch_up_batch(self, until: int | None) -> int | None:
        """One step of `catch_up`: the position reached once the caller is served, None while
        there is more to apply (or another process is applying it and is not at `until`)."""
        # Batched on PostgreSQL: BEGIN, the lock and the position go in one message (the
        # position is read by a statement of its own, after the lock is taken), the views'
        # writes with the COMMIT, rather than each waiting for a round trip while the lock is
        # held (an error fails the batch, retried by the caller); and the COMMIT does not
        # wait for the disk (the log is there already).
        with self._database.derived_write() as db:
            if until is None:
                self._database.lock(db, TRACKING_NAME)
                granted = None
            else:
                granted = self._database.try_lock(db, TRACKING_NAME)
            tracked = _tracked(db)
            locked = granted is None or granted()
            if locked:
                position = tracked()
                reached = self._apply_batch(db, position)
        if locked:
            # Committed. Done when nothing was left, or when the caller's own position is in
            # (no transaction more only to find nothing to do).
            done = reached == position or (until is not None and reached >= until)
            return reached if done else None
        # Another process is applying the log: let it, and watch the position.
        assert until is not None
        position = self.position()
        if position >= until:
            return position
        time.sleep(BUSY_WAIT_S)
        return None

    def catch_up_to_head(self) -> int:
        """`catch_up` until the log's last event as of now: what a follower woken by news of
        other processes' events, or a worker about to read the views, needs."""
        return self.catch_up(until=self._store.last_position())

    def _apply_next_batch_one_by_one(self) -> None:
        """The next batch holds an event that cannot be applied: apply it again, one event at
        a time, recording and skipping those that fail."""
        with self._database.write() as db:
            self._database.lock(db, TRACKING_NAME)
            rows = self._store.read_rows(db, _position(db), BATCH)
            self._apply_one_by_one(db, rows)
            if rows:
                _set_position(db, TRACKING_NAME, rows[-1][0])

    def rebuild(self) -> int:
        """Drop every view and replay the whole log, in one transaction: readers see the old
        views or the new ones, never a half-built state (on PostgreSQL they wait for it).
        Every event is tried again; those that still cannot be applied are recorded again."""
        with self._lock, _old_objects_frozen():
            try:
                self._reached = self._rebuild_fast()
                return self._reached
            except Exception as error:
                if self._database.is_transient(error):
                    raise
                log.warning("rebuild: an event cannot be applied (%s); replaying with care", error)
            self._reached = self._rebuild_with_care()
            return self._reached

    def _rebuild_fast(self) -> int:
        with self._database.write() as db:
            self._start_rebuild(db)
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

    def _rebuild_with_care(self) -> int:
        """The rebuild, batch by batch in savepoints; a batch that fails goes event by event.
        Rows are written at the end of each batch, so a failing batch can be rolled back."""
        with self._database.write() as db:
            self._start_rebuild(db)
            position = 0
            while rows := self._store.read_rows(db, position, REBUILD_BATCH):

                def apply(rows: list[EventRow] = rows) -> None:
                    apply_events(db, self._store.decode_rows(rows, handled))

                if self._in_savepoint(db, "tpc_batch", apply) is not None:
                    self._apply_one_by_one(db, rows)
                position = rows[-1][0]
            if position:
                _set_position(db, TRACKING_NAME, position)
            return position

    def _start_rebuild(self, db: Connection) -> None:
        self._database.lock(db, TRACKING_NAME)
        drop_views(db)
        create_schema(db, self._database)
        _set_position(db, SCHEMA_MARK, VIEWS_VERSION)

    def _apply_one_by_one(self, db: Connection, rows: list[EventRow]) -> None:
        """Apply each event in a savepoint of its own; record and skip those that fail."""
        for row in rows:

            def apply(row: EventRow = row) -> None:
                apply_events(db, self._store.decode_rows([row], handled))

            error = self._in_savepoint(db, "tpc_event", apply)
            if error is not None:
                _record_failure(db, row, error)

    def _in_savepoint(
        self, db: Connection, name: str, apply: Callable[[], None]
    ) -> Exception | None:
        """Run `apply` in a savepoint; an error about the data rolls it back and is returned,
        one about the database (which may have ended the transaction) is raised."""
        db.execute(f"SAVEPOINT {name}")
        try:
            apply()
        except Exception as error:
            if self._database.is_transient(error):
                raise
            db.execute(f"ROLLBACK TO SAVEPOINT {name}")
            db.execute(f"RELEASE SAVEPOINT {name}")
            return error
        db.execute(f"RELEASE SAVEPOINT {name}")
        return None

    def status(self) -> dict[str, Any]:
        """Where the views are: `position` (last event applied or skipped), `head` (the log's
        last event), `lag`, and the events that could not be applied (`failure_count`, and the
        first `LISTED_FAILURES` as `failures`: position, topic, error, recorded_at)."""
        figures = self.health()
        rows = self._database.read(
            f"SELECT position, topic, error, recorded_at FROM {FAILURES_TABLE}"
            " ORDER BY position LIMIT ?",
            (LISTED_FAILURES,),
        )
        return {
            "position": figures["position"],
            "head": figures["head"],
            "lag": figures["lag"],
            "failure_count": figures["failures"],
            "failures": [
                {"position": int(r[0]), "topic": r[1], "error": r[2], "recorded_at": r[3]}
                for r in rows
            ],
        }

    def health(self) -> dict[str, int]:
        """The status in figures: position, head, lag, failures (a count)."""
        position = self.position()
        head = self._store.last_position()
        count = self._database.read_one(f"SELECT count(*) FROM {FAILURES_TABLE}")
        figures = {
            "position": position,
            "head": head,
            "lag": max(0, head - position),
            "failures": int(count[0]) if count else 0,
        }
        self._health = (time.monotonic(), figures)
        return figures

    def recent_health(self) -> dict[str, int] | None:
        """The last `health()` figures if at most `HEALTH_MAX_AGE_S` old: health checks stay
        as cheap as a request can be, however often they come."""
        recent = self._health
        if recent is None or time.monotonic() - recent[0] > HEALTH_MAX_AGE_S:
            return None
        return recent[1]

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

    def _apply_batch(self, db: Connection, position: int) -> int:
        """Apply the next batch after `position`; returns the position reached."""
        rows = self._store.read_rows(db, position, BATCH)
        if not rows:
            return position
        events = self._store.decode_rows(rows, handled)
        apply_events(db, events, streams=streams_with_rows(rows))
        last = int(rows[-1][0])
        _set_position(db, TRACKING_NAME, last)
        return last

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


def _record_failure(db: Connection, row: EventRow, error: Exception) -> None:
    position, _, _, topic, _ = row
    # The error may quote the very text that failed: cleaned, so that it can be stored.
    text = clean_text(f"{type(error).__name__}: {error}")[:MAX_ERROR_TEXT]
    db.execute(
        f"INSERT INTO {FAILURES_TABLE} (position, topic, error, recorded_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (position) DO UPDATE SET topic = excluded.topic,"
        " error = excluded.error, recorded_at = excluded.recorded_at",
        (position, topic, text, datetime.now(UTC).isoformat()),
    )
    log.error("views: event %s (%s) cannot be applied and was skipped: %s", position, topic, text)


def _position(db: Connection, name: str = TRACKING_NAME) -> int:
    return _tracked(db, name)()


def _tracked(db: Connection, name: str = TRACKING_NAME) -> Callable[[], int]:
    """The position `name`, asked for now and read when called (see `Database.try_lock`)."""
    cursor = db.execute("SELECT position FROM tracking WHERE name = ?", (name,))

    def position() -> int:
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    return position


def _set_position(db: Connection, name: str, position: int) -> None:
    db.execute(
        "INSERT INTO tracking (name, position) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (name, position),
    )
