"""The event store: an eventsourcing Application over SQLite, and typed access to its log."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import Notification

from domain.errors import NotFound

A = TypeVar("A", bound=Aggregate)


class EventStore(Application[UUID]):
    """Saves aggregates atomically and serves the notification log projections follow."""

    name = "tpc"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
                "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
                "CREATE_TABLE": "y",
            }
        )

    def load(self, kind: type[A], stream: UUID, label: str, version: int | None = None) -> A:
        """The aggregate, or `NotFound` naming what the user asked for."""
        try:
            aggregate: Aggregate = self.repository.get(stream, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{label} not found") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"{label} not found")
        return aggregate

    def exists(self, stream: UUID) -> bool:
        return stream in self.repository

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def read_notifications(
        self, db: sqlite3.Connection, after: int, limit: int
    ) -> list[Notification]:
        """The same as `notifications`, read through the caller's connection, so that a
        projection can read and write in one transaction without taking a second connection
        from the store's pool (whose reader/writer interlock would deadlock with it)."""
        table = self.recorder.events_table_name  # type: ignore[attr-defined]
        rows = db.execute(
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {table}"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit),
        ).fetchall()
        return [
            Notification(
                id=row[0],
                originator_id=UUID(row[1]),
                originator_version=row[2],
                topic=row[3],
                state=row[4],
            )
            for row in rows
        ]

    def to_event(self, notification: Notification) -> DomainEventProtocol[Any]:
        return self.mapper.to_domain_event(notification)

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0
