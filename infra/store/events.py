"""The event store: an eventsourcing Application on the configured database (SQLite or
PostgreSQL), and typed access to its log (decoded by `decoding.EventDecoder`).

Every save is guarded, whatever route or command made it: an event holding text that a store
cannot keep (a NUL character, a lone surrogate) is refused before anything is written
(`InvalidInput`, located; `transcoding.SafeTextTranscoder`), and a store out of space says so
(`StorageFull`) rather than failing with a database error. Nothing of a refused save lands."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import Mapper, Notification, Recording, Transcoder

from domain.errors import NotFound, StorageFull
from infra.store.database import STORAGE_FULL, Connection, Database
from infra.store.decoding import EventDecoder, EventRow
from infra.store.transcoding import PayloadMapper, SafeTextTranscoder

A = TypeVar("A", bound=Aggregate)


class EventStore(Application[UUID]):
    """Saves aggregates atomically and serves the notification log projections follow."""

    name = "tpc"

    def __init__(self, database: Database) -> None:
        env = {
            **database.event_store_env(),
            "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
            "CREATE_TABLE": "y",
        }
        # eventsourcing reads `TPC_<KEY>` (the application's name) before `<KEY>`, from the
        # process environment too: set both, so that the settings chosen here always win.
        super().__init__(env={**env, **{f"TPC_{key}": value for key, value in env.items()}})
        self.database = database
        self.events_table: str = self.recorder.events_table_name  # type: ignore[attr-defined]
        # SQLite numbers the log by rowid; eventsourcing's PostgreSQL table has a column.
        self._position = "rowid" if database.kind == "sqlite" else "notification_id"
        self._decoder = EventDecoder(self.mapper)

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PayloadMapper
        )

    def construct_transcoder(self) -> Transcoder:
        transcoder = SafeTextTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """Save every pending event atomically; `InvalidInput` when one holds text no store
        can keep, `StorageFull` when the database has no room: either way nothing is saved.
        Under a guard (`Database.guarded`), `GuardFailed` unless it holds, before anything is
        written: a write may act on a token's guessed product only once its check confirms it."""
        self.database.settle_guard()
        try:
            return super().save(*objs, **kwargs)
        except Exception as error:
            if self.database.is_storage_full(error):
                raise StorageFull(STORAGE_FULL) from error
            raise

    @property
    def log_channel(self) -> str | None:
        """The channel PostgreSQL notifies in every transaction that appends events."""
        channel: str | None = getattr(self.recorder, "channel_name", None)
        return channel

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

    def read_notifications(self, db: Connection, after: int, limit: int) -> list[Notification]:
        """The same as `notifications`, read through the caller's connection, so that a
        projection reads and writes in one transaction (on SQLite, taking a second connection
        from the store's pool while holding the write lock would deadlock with the pool's
        reader/writer interlock)."""
        rows = self._rows(db, after, limit)
        return [
            Notification(
                id=row[0],
                originator_id=row[1] if isinstance(row[1], UUID) else UUID(row[1]),
                originator_version=row[2],
                topic=row[3],
                state=bytes(row[4]),
            )
            for row in rows
        ]

    def read_events(
        self,
        db: Connection,
        after: int,
        limit: int,
        wanted: Callable[[type], bool] | None = None,
    ) -> tuple[Iterator[tuple[Any, int]], int]:
        """Up to `limit` events after position `after`, with their positions, read through the
        caller's connection (see `read_notifications`), and the last position read (`after`
        when there is none). Events of a class `wanted` refuses are read but never decoded.

        The events are decoded as they are iterated: applied one by one, each dies young,
        rather than a batch of them surviving into the garbage collector's older generations,
        whose collections scan every object of the process."""
        rows = self._rows(db, after, limit)
        if not rows:
            return iter(()), after
        return self._decoder.decode_rows(rows, wanted), int(rows[-1][0])

    def read_rows(self, db: Connection, after: int, limit: int) -> list[EventRow]:
        """Up to `limit` stored events after position `after`, undecoded, through the
        caller's connection: (position, originator id, version, topic, state)."""
        return self._rows(db, after, limit)

    def decode_rows(
        self, rows: list[EventRow], wanted: Callable[[type], bool] | None = None
    ) -> Iterator[tuple[Any, int]]:
        """(event, position) of each row `wanted` accepts, decoded as iterated."""
        return self._decoder.decode_rows(rows, wanted)

    def _rows(self, db: Connection, after: int, limit: int) -> list[Any]:
        """(position, originator id, version, topic, state) of the events after `after`."""
        return db.execute(
            f"SELECT {self._position}, originator_id, originator_version, topic, state"
            f" FROM {self.events_table} WHERE {self._position} > ?"
            f" ORDER BY {self._position} LIMIT ?",
            (after, limit),
        ).fetchall()

    def to_event(self, notification: Notification) -> DomainEventProtocol[Any]:
        return self._decoder.decode(
            notification.topic,
            notification.originator_id,
            notification.originator_version,
            notification.state,
        )

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0
