"""The PostgreSQL adapter of the storage port (psycopg 3): the event log (eventsourcing's
`eventsourcing.postgres` module, configured here) and our tables share one database.

- Our tables use a small connection pool in autocommit; a write is one explicit transaction.
- SQL is written with `?` placeholders (as for SQLite) and rewritten to psycopg's `%s`.
- Writers that must not interleave across processes (the projector) take a transaction-scoped
  advisory lock; schema creation takes a session one on a connection of its own.
- eventsourcing's recorder sends `NOTIFY <events table>` in every transaction that appends
  events; `PostgresLogWatcher` LISTENs on a dedicated connection to wake the projections.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

from domain.errors import StorageFull
from infra.settings import PostgresPool, SettingsError
from infra.store.database import STORAGE_FULL, Database, Row, causes

# What TPC_DATABASE_URL may carry: everything else is a libpq environment variable (PG*), so
# that the event store's connections, which eventsourcing opens, get it too.
URL_PARAMETERS = frozenset({"user", "password", "host", "port", "dbname"})
# The longest a log watcher blocks before it looks whether it was closed.
SLICE_S = 0.5
DISK_FULL = "53100"
# SQLSTATE classes about the server rather than the data: connection exception, transaction
# rollback (deadlock, serialization), insufficient resources, object not in prerequisite
# state (lock not available), operator intervention (query canceled, shutdown), system error,
# internal error.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "55", "57", "58", "XX"})


def is_disk_full(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) == DISK_FULL


class PgRow:
    """A row readable like `sqlite3.Row`: by column name, by position, or unpacked."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: Sequence[Any]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def pg_row(cursor: Any) -> RowMaker[PgRow]:
    """psycopg row factory for `PgRow`."""
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(names, values)


@lru_cache(maxsize=1024)
def pg_sql(statement: str) -> str:
    """`?` placeholders to psycopg's `%s` (our SQL has no `?` or `%` in its literals)."""
    return statement.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection speaking the port's dialect (`?` placeholders)."""

    def __init__(self, connection: psycopg.Connection[PgRow]) -> None:
        self.connection = connection

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[PgRow]:
        return self.connection.execute(pg_sql(statement), parameters)

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> None:
        with self.connection.cursor() as cursor:
            # psycopg pipelines the rows: one round trip for the batch, not one per row.
            cursor.executemany(pg_sql(statement), parameters)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], /
    ) -> None:
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        if self.connection.pgconn.pipeline_status:
            self._insert_values(sql.Identifier(table), names, len(columns), list(rows))
            return
        copy_rows = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)
        with self.connection.cursor() as cursor, cursor.copy(copy_rows) as copy:
            for row in rows:
                copy.write_row(row)

    def _insert_values(
        self, table: sql.Identifier, names: sql.Composable, width: int, rows: list[Sequence[Any]]
    ) -> None:
        """Rows in a pipeline (where COPY cannot run): one multi-row INSERT per chunk. An
        `executemany` polls the socket once per row, letting go of the GIL each time, and
        under load each time waits for another thread's turn to get it back."""
        marks = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * width))
        per_statement = max(1, MAX_PARAMETERS // width)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            statement = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
                table, names, sql.SQL(", ").join([marks] * len(chunk))
            )
            # Not prepared: each chunk's length is a statement of its own.
            self.connection.execute(statement, [v for row in chunk for v in row], prepare=False)


# The most parameters a statement may carry (the protocol counts them in 16 bits).
MAX_PARAMETERS = 65535


def lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for a name."""
    return int.from_bytes(hashlib.sha256(f"tpc:{name}".encode()).digest()[:8], signed=True)


@contextlib.contextmanager
def _full_disk_as_storage_full() -> Iterator[None]:
    """A full disk, however the driver words it, as `StorageFull` (nothing was written)."""
    try:
        yield
    except psycopg.Error as error:
        if any(is_disk_full(e) for e in causes(error)):
            raise StorageFull(STORAGE_FULL) from error
        raise


class PostgresDatabase(Database):
    kind = "postgresql"
    types: ClassVar[dict[str, str]] = {
        "serial": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "int": "BIGINT",
        "bytes": "BYTEA",
    }

    def __init__(self, params: dict[str, str], pool: PostgresPool) -> None:
        extra = sorted(set(params) - URL_PARAMETERS)
        if extra:
            raise SettingsError(
                f"TPC_DATABASE_URL may name only the user, password, host, port and database "
                f"(it also sets {', '.join(extra)}): set other libpq options through PG* "
                "environment variables (e.g. PGSSLMODE=require), which every connection reads"
            )
        self.params = {"user": getpass.getuser(), **params}
        self.pool_settings = pool
        self._connect_args: dict[str, Any] = {
            **self.params,
            "connect_timeout": pool.connect_timeout_s,
            "application_name": "tpc",
        }
        self._check_reachable()
        self._pool: ConnectionPool[psycopg.Connection[PgRow]] = ConnectionPool(
            kwargs={**self._connect_args, "autocommit": True, "row_factory": pg_row},
            min_size=pool.pool_size,
            max_size=pool.pool_size + pool.max_overflow,
            timeout=max(30.0, float(pool.connect_timeout_s)),
            name="tpc",
            open=True,
        )
        # The views' catch-ups have a connection of their own (`derived_write`).
        self._derived_connection: psycopg.Connection[PgRow] | None = None
        self._derived_lock = threading.Lock()

    @property
    def where(self) -> str:
        """The database, as people name it (no password)."""
        host = self.params.get("host") or "localhost"
        port = self.params.get("port") or "5432"
        return f"postgresql://{self.params['user']}@{host}:{port}/{self.params['dbname']}"

    def _check_reachable(self) -> None:
        # One plain connection first: a pool would retry quietly in the background and end in
        # a timeout that does not say why.
        try:
            psycopg.connect(**self._connect_args).close()
        except psycopg.OperationalError as error:
            reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise SettingsError(
                f"cannot connect to the PostgreSQL database {self.where} "
                f"(TPC_DATABASE_URL): {reason}"
            ) from None

    def read(self, statement: str, parameters: Sequence[Any] = ()) -> list[Row]:
        with self._pool.connection() as connection:
            return list(connection.execute(pg_sql(statement), parameters).fetchall())

    @contextlib.contextmanager
    def write(self) -> Iterator[PgConnection]:
        """A write transaction; a full disk is `StorageFull`, with nothing of it written."""
        with (
            _full_disk_as_storage_full(),
            self._pool.connection() as connection,
            connection.transaction(),
        ):
            yield PgConnection(connection)

    def write_one(self, statement: str, parameters: Sequence[Any] = ()) -> None:
        # In autocommit: one round trip, where a transaction around it would take three.
        with _full_disk_as_storage_full(), self._pool.connection() as connection:
            connection.execute(pg_sql(statement), parameters)

    @contextlib.contextmanager
    def derived_write(self) -> Iterator[PgConnection]:
        # On a connection of its own, outside the pool: the catch-up holds the projector's
        # lock, which every command of the process waits for, so it must not queue for a
        # connection behind the reads (under load it did, a tenth of its time).
        # BEGIN and COMMIT sent as statements: psycopg's `transaction()` would wait for a
        # round trip of its own at each end of the block.
        with _full_disk_as_storage_full(), self._derived_lock:
            connection = self._derived()
            try:
                with connection.pipeline():
                    connection.execute("BEGIN")
                    yield PgConnection(connection)
                    connection.execute("COMMIT")
            except BaseException:
                if connection.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        connection.execute("ROLLBACK")
                raise

    def _derived(self) -> psycopg.Connection[PgRow]:
        """The catch-ups' connection, opened again when it was lost (a restarted server)."""
        connection = self._derived_connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        if connection is not None:
            connection.close()
        connection = psycopg.connect(**self._connect_args, autocommit=True, row_factory=pg_row)
        # Asynchronous commit, for this connection's transactions only (the views'): visible
        # at once, on disk a moment later (wal_writer_delay), atomic either way.
        connection.execute("SET synchronous_commit TO off")
        self._derived_connection = connection
        return connection

    def lock(self, db: Any, name: str) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))

    def try_lock(self, db: Any, name: str) -> bool:
        row = db.execute("SELECT pg_try_advisory_xact_lock(?)", (lock_key(name),)).fetchone()
        return bool(row[0])

    @contextlib.contextmanager
    def schema_lock(self) -> Iterator[None]:
        # A connection of its own: the pool may be as small as one connection, which the
        # schema work inside this block needs.
        with psycopg.connect(**self._connect_args, autocommit=True) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (lock_key("schema"),))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (lock_key("schema"),))

    def event_store_env(self) -> dict[str, str]:
        pool = self.pool_settings
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.params["dbname"],
            "POSTGRES_HOST": self.params.get("host", ""),
            "POSTGRES_PORT": self.params.get("port", "5432"),
            "POSTGRES_USER": self.params["user"],
            "POSTGRES_PASSWORD": self.params.get("password", ""),
            "POSTGRES_POOL_SIZE": str(pool.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(pool.max_overflow),
            "POSTGRES_CONNECT_TIMEOUT": str(pool.connect_timeout_s),
            # Without it a save would wait for the table lock forever behind a stuck writer.
            "POSTGRES_LOCK_TIMEOUT": str(pool.lock_timeout_s),
            # Never eventsourcing's database functions: they drop the table lock that keeps the
            # log gap-free for followers when several processes write. Ours keeps it, and
            # takes it for one statement only (`pg_recorder`).
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "infra.store.pg_recorder:PostgresEventRecorder",
        }

    def log_watcher(self, channel: str | None) -> PostgresLogWatcher:
        assert channel is not None, "the PostgreSQL event store names its notify channel"
        return PostgresLogWatcher(self._connect_args, channel)

    def _says_full(self, error: BaseException) -> bool:
        return is_disk_full(error)

    def _says_transient(self, error: BaseException) -> bool:
        if not isinstance(error, psycopg.Error):
            return False
        sqlstate = error.sqlstate
        if sqlstate is None:
            # Raised by psycopg itself: a lost connection or a pool timeout is transient; a
            # value it cannot send (a NUL in text: `DataError`) is about the data.
            return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
        return sqlstate[:2] in _TRANSIENT_CLASSES

    def close(self) -> None:
        with self._derived_lock:
            if self._derived_connection is not None:
                self._derived_connection.close()
                self._derived_connection = None
        self._pool.close()


class PostgresLogWatcher:
    """LISTENs on the event table's channel with a connection of its own. A NOTIFY can be lost
    (a dropped connection, a restart), so callers also poll: `wait` returns after `timeout`
    anyway, and a broken connection is replaced on the next wait."""

    def __init__(self, connect_args: dict[str, Any], channel: str) -> None:
        self._connect_args = connect_args
        self._channel = channel
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def _listening(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(**self._connect_args, autocommit=True)
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._connection = connection
        return self._connection

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed.is_set():
                return False
            try:
                connection = self._listening()
                # In slices, so that `close` never waits long for this thread.
                while not self._closed.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    woken = False
                    for _ in connection.notifies(timeout=min(remaining, SLICE_S), stop_after=1):
                        woken = True
                    if woken:
                        # A burst of saves is one wake-up: drain what is already here.
                        for _ in connection.notifies(timeout=0):
                            pass
                        return True
                return False
            except psycopg.Error:
                self._discard()
        # No connection (the server is restarting): this wait is a plain poll interval.
        self._closed.wait(max(0.0, deadline - time.monotonic()))
        return False

    def _discard(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._discard()
