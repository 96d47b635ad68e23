"""Following the event log: each batch of events and the new tracking position are written in
one transaction, so the views are always exactly the log up to that position.

SQLite cannot push notifications, so the server polls (`catch_up` on a timer) and also calls
`catch_up` right after each command, which gives a client read-your-writes. The position is
read inside the write transaction, so several processes can follow the same log safely.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from infra.store.events import EventStore
from infra.store.sqlite import connect, write_transaction
from projections.views import apply_events, create_schema, drop_views

TRACKING_NAME = "views"
# Bump when a view's shape changes: stores built with another version rebuild on start.
VIEWS_VERSION = 3
SCHEMA_MARK = "views_schema"
BATCH = 500


class Projector:
    def __init__(self, store: EventStore, path: Path) -> None:
        self._store = store
        self._db = connect(path)
        self._lock = threading.Lock()
        with write_transaction(self._db):
            create_schema(self._db)
            built_with = _position(self._db, SCHEMA_MARK)
        if built_with != VIEWS_VERSION:
            # The views are derived data: when their shape changes, rebuild them from the log.
            self.rebuild()

    def catch_up(self) -> int:
        """Apply every event not yet in the views; returns the position reached."""
        with self._lock:
            while True:
                with write_transaction(self._db):
                    position = _position(self._db)
                    if not self._apply_batch(position):
                        return position

    def rebuild(self) -> int:
        """Drop every view and replay the whole log, in one transaction: readers see the old
        views or the new ones, never a half-built state."""
        with self._lock, write_transaction(self._db):
            drop_views(self._db)
            create_schema(self._db)
            _set_position(self._db, SCHEMA_MARK, VIEWS_VERSION)
            position = 0
            while self._apply_batch(position):
                position = _position(self._db)
            return position

    def _apply_batch(self, position: int) -> bool:
        notifications = self._store.read_notifications(self._db, position, BATCH)
        apply_events(self._db, ((self._store.to_event(n), n.id) for n in notifications))
        if notifications:
            _set_position(self._db, TRACKING_NAME, notifications[-1].id)
        return bool(notifications)

    def close(self) -> None:
        self._db.close()


def _position(db: sqlite3.Connection, name: str = TRACKING_NAME) -> int:
    row = db.execute("SELECT position FROM tracking WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


def _set_position(db: sqlite3.Connection, name: str, position: int) -> None:
    db.execute(
        "INSERT INTO tracking (name, position) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (name, position),
    )
