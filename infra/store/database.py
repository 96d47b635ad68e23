"""The storage port: what our own tables (views, tracking, blobs, migrations) need from a
database, so that one implementation of the view logic and of the queries runs on SQLite and on
PostgreSQL. Adapters: `infra/store/sqlite.py`, `infra/store/postgres.py`; `open_database`
(`infra/store/opening.py`) picks one.

The seam is small on purpose:

- SQL is written once, with `?` placeholders; the PostgreSQL adapter rewrites them.
- DDL names its few differing types with `{serial}`, `{int}` and `{bytes}` (`ddl()`).
- Upserts use `INSERT … ON CONFLICT … DO UPDATE/NOTHING`, which both databases accept.
- JSON columns are TEXT on both, encoded and decoded by us: PostgreSQL's jsonb would reorder
  object keys, and the answers must be identical on both stores.
- Rows are read by column name (or position).
- Bulk inserts of complete rows go through `Connection.insert_rows` (PostgreSQL: COPY).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from domain.errors import StorageFull

Kind = Literal["sqlite", "postgresql"]
STORAGE_FULL = "the store is out of space: nothing was saved; try again once space is freed"


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it, outermost first (eventsourcing wraps driver errors)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class Row(Protocol):
    """A result row: `row["column"]` or `row[0]`; iterating gives the values in order."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside a write transaction."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], /
    ) -> None:
        """Insert many complete rows (no conflict handling): `executemany` on SQLite, one
        COPY on PostgreSQL, where `executemany` runs a statement per row on the server."""
        ...


@dataclass(frozen=True)
class Guard:
    """A query whose rows say whether reads made on an assumption may be used (`holds`)."""

    statement: str
    parameters: Sequence[Any]
    holds: Callable[[Sequence[Row]], bool]


class GuardFailed(Exception):
    """A guard did not hold: nothing read on its assumption was used."""


class LogWatcher(Protocol):
    """Waits for news of appended events."""

    def wait(self, timeout: float) -> bool:
        """True when woken by a notification, False when `timeout` seconds passed without."""
        ...

    def close(self) -> None: ...


class Database(ABC):
    """One database holding the event log and our tables, shared by every component of a
    process (event store, blobs, projector, views)."""

    kind: ClassVar[Kind]
    # DDL spellings of the types that differ (see `ddl`).
    types: ClassVar[dict[str, str]]

    def ddl(self, statement: str) -> str:
        return statement.format(**self.types)

    @abstractmethod
    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Every row of one query, outside any write transaction."""

    def read_together(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Every row of each query, in order: independent reads a command needs at once (a
        remote database gets them in one message)."""
        return [self.read(sql, parameters) for sql, parameters in queries]

    def read_one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        rows = self.read(sql, parameters)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def guarded(self, guard: Guard) -> Iterator[None]:
        """A block whose reads (in this thread) may be used only if `guard` holds, else
        `GuardFailed`. Here the guard is read first; a remote database sends it with the
        block's first read, in one message (`PostgresDatabase`), and reads it before that
        read's rows are returned, before any write, and at the latest when the block ends,
        whatever it raised."""
        if not guard.holds(self.read(guard.statement, guard.parameters)):
            raise GuardFailed
        yield

    def settle_guard(self) -> None:  # noqa: B027 (here the guard was read when its block began)
        """Before a write made outside `write`, `write_one` and `derived_write` (which do this
        themselves): `GuardFailed` unless this thread's guard holds. A remote database reads it
        now if no read has carried it yet."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Connection]:
        """A connection in a write transaction: committed on exit, rolled back on error."""

    def write_one(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        """One statement, committed on its own (PostgreSQL: in autocommit, one round trip
        where a transaction takes three)."""
        with self.write() as db:
            db.execute(sql, parameters)

    def derived_write(self) -> AbstractContextManager[Connection]:
        """`write` for data derived from the event log (the views, with their position in
        it), made for short transactions under a lock. Pipelined from BEGIN to COMMIT:
        statements whose results nobody reads are sent without waiting for the server's
        answer, a read waits for what was sent before it, and an error surfaces at the latest
        when the block ends (the transaction then fails whole). And its commit does not wait
        for the disk: a crash may lose the last such transactions, each whole, never part of
        one; the views are then back at an earlier position, and applying the log again from
        there brings them back. Where the database is in the process (SQLite), `write`."""
        return self.write()

    @abstractmethod
    def lock(self, db: Connection, name: str) -> None:
        """Serialise, across processes, the transactions that take the lock `name`; held
        until the transaction ends."""

    def try_lock(self, db: Connection, name: str) -> Callable[[], bool]:
        """Ask for the lock `name` without waiting for another transaction that holds it; the
        answer (True: taken, held until the transaction ends) is read when called, so that
        statements sent meanwhile on a connection that keeps them (a catch-up's on
        PostgreSQL) go with the request. Where `write` already serialises every writer
        (SQLite), it is always free."""
        self.lock(db, name)
        return lambda: True

    @abstractmethod
    def schema_lock(self) -> AbstractContextManager[None]:
        """Held while a process creates or migrates the schema, so that processes starting
        together on a fresh database do not race on `CREATE TABLE`."""

    @abstractmethod
    def event_store_env(self) -> dict[str, str]:
        """The eventsourcing persistence settings for this database."""

    @abstractmethod
    def log_watcher(self, channel: str | None) -> LogWatcher:
        """A watcher woken when events are appended (`channel`: the store's notify channel)."""

    def is_storage_full(self, error: BaseException) -> bool:
        """Whether `error` (or what caused it) says the database has no room left."""
        return any(isinstance(e, StorageFull) or self._says_full(e) for e in causes(error))

    def is_transient(self, error: BaseException) -> bool:
        """Whether `error` is about the database (unreachable, busy, out of space), not about
        the data written: the same write may succeed later, so it must not be recorded as a
        failure of that data (the projector retries instead)."""
        return any(
            isinstance(e, StorageFull) or self._says_full(e) or self._says_transient(e)
            for e in causes(error)
        )

    @abstractmethod
    def _says_full(self, error: BaseException) -> bool:
        """This driver's own error for a full disk (not its causes)."""

    @abstractmethod
    def _says_transient(self, error: BaseException) -> bool:
        """This driver's own errors about the database rather than the data."""

    @abstractmethod
    def close(self) -> None: ...
