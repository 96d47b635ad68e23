"""A catch-up's connection on PostgreSQL: its statements wait until a result is needed, then go
to the server together, as one message (`BatchedConnection`).

A catch-up holds the projector's lock, which every command of the process waits for. Each
psycopg call that talks to the server lets go of the GIL, and under load each time waits for
another thread's turn to get it back: a batch's twenty-odd statements, pipelined, still cost
as many waits (psycopg polls the socket after every statement, and after every row of an
`executemany`). Here a batch makes one call per read it needs (BEGIN with the lock and the
position, the events, the rows they change) and one for all its writes with the COMMIT.

The statements go by the simple query protocol, several in one message, so their parameters
are bound on the client (`ClientBinding`), and NUL in text is refused as binding on the server
refuses it. A statement that fails aborts the rest of its message and the transaction, which
the caller rolls back, as with any failed write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql

from infra.store.database import Row

# Rows per multi-row INSERT: the statement's text grows with them.
ROWS_PER_INSERT = 500


class ClientBinding:
    """A statement's `?` placeholders replaced by its parameters as SQL literals.

    Text, whole numbers and NULL, nearly every value a catch-up writes, are quoted here: a
    string in single quotes with each quote doubled, which is the whole of PostgreSQL's
    quoting where a backslash is a plain character (`standard_conforming_strings`, on by
    default) and the text goes as UTF-8; psycopg's quoting took ten times as long (a tenth of
    the server's time under load, much of it under the projector's lock). Any other value, or
    a connection where those two do not hold, gets psycopg's own quoting."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        info = connection.info
        self._plain = (
            info.parameter_status("standard_conforming_strings") == "on"
            and info.encoding == "utf-8"
        )

    def __call__(self, statement: str, parameters: Sequence[Any]) -> str:
        parts = _between_placeholders(statement)
        if len(parts) != len(parameters) + 1:
            raise psycopg.ProgrammingError(
                f"the statement has {len(parts) - 1} placeholders, given {len(parameters)} values"
            )
        text = [parts[0]]
        for value, part in zip(parameters, parts[1:], strict=True):
            text.append(self._literal(value))
            text.append(part)
        return "".join(text)

    def _literal(self, value: Any) -> str:
        kind = type(value)
        if kind is str and self._plain:
            if "\x00" in value:
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
            return "'" + str(value).replace("'", "''") + "'"
        if kind is int:
            # A space before a minus, so that `n - ?` never reads as a comment (`--`).
            return str(value) if value >= 0 else f" {value}"
        if value is None:
            return "NULL"
        return sql.Literal(value).as_string(self._connection)


@lru_cache(maxsize=1024)
def _between_placeholders(statement: str) -> list[str]:
    """The statement's text around its `?` placeholders (our SQL has no `?` in literals)."""
    return statement.split("?")


class DeferredCursor:
    """The rows of one statement of a batch, read when the batch has been sent."""

    def __init__(self, batch: BatchedConnection) -> None:
        self._batch = batch
        self._rows: list[Row] | None = None
        self._next = 0

    def fill(self, rows: list[Row]) -> None:
        self._rows = rows

    def _sent(self) -> list[Row]:
        if self._rows is None:
            self._batch.send()
        assert self._rows is not None, "a statement without rows has nothing to fetch"
        return self._rows

    def fetchone(self) -> Row | None:
        rows = self._sent()
        if self._next >= len(rows):
            return None
        self._next += 1
        return rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        rows = self._sent()
        rest, self._next = rows[self._next :], len(rows)
        return rest

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class BatchedConnection:
    """The port's `Connection` over one psycopg connection in autocommit, for one transaction
    (BEGIN is the first statement): statements are kept until a cursor's rows are fetched, or
    until `send` (the COMMIT's)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._bind = ClientBinding(connection)
        self._pending: list[tuple[str, DeferredCursor]] = []

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> DeferredCursor:
        text = self._bind(statement, parameters)
        cursor = DeferredCursor(self)
        self._pending.append((text, cursor))
        return cursor

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> None:
        for values in parameters:
            self.execute(statement, values)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], /
    ) -> None:
        rows = list(rows)
        marks = f"({', '.join('?' * len(columns))})"
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            values = ", ".join([marks] * len(chunk))
            self.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}",
                [value for row in chunk for value in row],
            )

    def send(self) -> None:
        """Send every kept statement as one message; each read's rows go to its cursor."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self._connection.cursor() as cursor:
            message = "; ".join(text for text, _ in pending)
            cursor.execute(message.encode(self._connection.info.encoding), prepare=False)
            for index, (_, deferred) in enumerate(pending):
                if index and not cursor.nextset():
                    raise psycopg.InterfaceError("a batch answered fewer statements than it sent")
                deferred.fill(cursor.fetchall() if cursor.description is not None else [])


@lru_cache(maxsize=1024)
def pg_sql(statement: str) -> str:
    """The port's `?` placeholders as psycopg's `%s`, a literal `%` doubled (our SQL has no `?`
    or `%` in its literals); every PostgreSQL connection of ours speaks through it."""
    return statement.replace("%", "%%").replace("?", "%s")
