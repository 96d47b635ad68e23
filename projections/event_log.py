"""What the projector needs of the event log: the port it follows, which the event store
(`infra/store/events.py`) provides. Declared here, by the side that uses it, so that the
projections depend on no more of the store than its storage port (`infra/store/database.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from infra.store.database import Connection

# A row of the events table as the projections read it:
# (position, originator id, version, topic, state).
EventRow = tuple[int, Any, int, str, bytes]


class EventLog(Protocol):
    @property
    def log_channel(self) -> str | None:
        """The channel a database notifies in every transaction that appends events."""
        ...

    def last_position(self) -> int: ...

    def read_rows(self, db: Connection, after: int, limit: int) -> list[EventRow]:
        """Up to `limit` stored events after position `after`, undecoded."""
        ...

    def read_events(
        self,
        db: Connection,
        after: int,
        limit: int,
        wanted: Callable[[type], bool] | None = None,
    ) -> tuple[Iterator[tuple[Any, int]], int]:
        """(event, position) of up to `limit` events after `after`, and the last position."""
        ...

    def decode_rows(
        self, rows: list[EventRow], wanted: Callable[[type], bool] | None = None
    ) -> Iterator[tuple[Any, int]]:
        """(event, position) of each row `wanted` accepts."""
        ...
