"""The SQLite adapter of the storage port: one file holds the event log and our tables. WAL lets
readers run beside the single writer; write transactions take the lock up front so they never
fail half way on a lock upgrade; SQLite cannot push notifications, so followers poll."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from domain.errors import StorageFull
from infra.store.database import STORAGE_FULL, Database, Row, causes

BUSY_TIMEOUT_MS = 30_000
# Result codes (primary: the low byte) that are about the file, not the data written.
_TRANSIENT_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def _code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(error, sqlite3.Error) and isinstance(code, int) else None


def is_disk_full(error: BaseException) -> bool:
    """SQLITE_FULL: the disk is full, or the file reached its `max_page_count`."""
    return _code(error) == sqlite3.SQLITE_FULL


class SqliteConnection(sqlite3.Connection):
    """A sqlite3 connection with the port's `insert_rows`."""

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], /
    ) -> None:
        placeholders = ", ".join("?" * len(columns))
        self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows
        )


def private_folder(path: Path) -> None:
    """Create the store's folder readable by its owner only: agents' commands run as another
    user on this machine and must not read the store. A folder that exists is left as it is
    (it may be the user's own, or /tmp)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def connect(path: Path) -> SqliteConnection:
    private_folder(path.parent)
    # The file and its -wal/-shm companions (which SQLite creates with the file's mode) are
    # the owner's only: every tenant's data and secrets are in them.
    path.touch(mode=0o600, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid():  # a store made by an older tpc
        path.chmod(0o600)
    connection = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        factory=SqliteConnection,
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


@contextlib.contextmanager
def write_transaction(connection: SqliteConnection) -> Iterator[SqliteConnection]:
    """A write transaction; a full disk is `StorageFull`, with nothing of it written."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException as error:
        # SQLite rolls the transaction back itself on some errors (SQLITE_FULL among them):
        # a second ROLLBACK would fail and hide the error that matters.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        if any(is_disk_full(e) for e in causes(error)) and not isinstance(error, StorageFull):
            raise StorageFull(STORAGE_FULL) from error
        raise


class SqliteDatabase(Database):
    """Our tables in the store's SQLite file, one connection per thread."""

    kind = "sqlite"
    types: ClassVar[dict[str, str]] = {
        "serial": "INTEGER PRIMARY KEY",
        "int": "INTEGER",
        "bytes": "BLOB",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[SqliteConnection] = []
        self._opened_lock = threading.Lock()

    def connection(self) -> SqliteConnection:
        """This thread's connection (opened on first use, closed by `close`)."""
        connection: SqliteConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = connect(self.path)
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        return self.connection().execute(sql, parameters).fetchall()

    def read_one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.connection().execute(sql, parameters).fetchone()
        return row

    @contextlib.contextmanager
    def write(self) -> Iterator[SqliteConnection]:
        with write_transaction(self.connection()) as db:
            yield db

    def lock(self, db: Any, name: str) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` already serialises every writer of the file."""

    @contextlib.contextmanager
    def schema_lock(self) -> Iterator[None]:
        # Schema changes run in write transactions, which SQLite serialises.
        yield

    def event_store_env(self) -> dict[str, str]:
        private_folder(self.path.parent)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.path),
            "SQLITE_LOCK_TIMEOUT": str(BUSY_TIMEOUT_MS // 1000),
        }

    def log_watcher(self, channel: str | None) -> Sleeper:
        return Sleeper()

    def _says_full(self, error: BaseException) -> bool:
        return is_disk_full(error)

    def _says_transient(self, error: BaseException) -> bool:
        return _code(error) in _TRANSIENT_CODES

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()


class Sleeper:
    """The log watcher of a store that cannot notify: every wait is a poll interval."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    def wait(self, timeout: float) -> bool:
        self._closed.wait(timeout)
        return False

    def close(self) -> None:
        self._closed.set()
