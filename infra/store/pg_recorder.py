"""The event log's recorder on PostgreSQL: eventsourcing's, with its appends made shorter.

eventsourcing keeps the notification ids gap-free for followers by taking the events table's
lock (`LOCK TABLE … IN EXCLUSIVE MODE`) in every transaction that appends: ids are then given
in commit order. Its append is a pipelined transaction (BEGIN, `SET LOCAL lock_timeout`, the
lock, `NOTIFY`, the INSERT, a sync, then COMMIT), so the lock is held across two round trips
to the client, and a client thread that waits for the CPU (or for Python's GIL, among a
server's request threads) holds it that much longer while every other writer queues.

Here an append is one statement, sent in autocommit: a function that sets the lock timeout,
takes the same lock in the same mode, notifies and inserts. The lock is taken and released
inside the server, within one implicit transaction, so no client round trip happens while it
is held; the guarantees are eventsourcing's (the same lock for the same span of ids; the
primary key (stream, version) refuses a stale write: optimistic concurrency). And appends
that arrive together are written together (`group_commit.GroupCommit`).

Appends that carry a tracking record (eventsourcing's process applications; tpc has none) go
through eventsourcing's own path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from infra.store.group_commit import GroupCommit

FUNCTION = "tpc_append_events"


class PostgresEventRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        function = Identifier(f"{FUNCTION}_{self.datastore.originator_id_type}")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "events {schema}.{event}[], lock_timeout text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "  PERFORM set_config('lock_timeout', lock_timeout, true); "
                "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "  NOTIFY {channel}; "
                "  RETURN QUERY INSERT INTO {schema}.{table} "
                "    (originator_id, originator_version, topic, state) "
                "    SELECT originator_id, originator_version, topic, state FROM unnest(events) "
                "    RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                event=Identifier(self.stored_event_type_name),
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self._append_statement = SQL("SELECT id FROM {schema}.{function}(%s, %s) AS id").format(
            schema=schema, function=function
        )
        self._lock_timeout = f"{self.datastore.lock_timeout}s"
        self.group_commit: GroupCommit[StoredEvent] = GroupCommit(self._append)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        if not stored_events:
            return None
        return self.group_commit.insert(stored_events)

    # eventsourcing's own retry of a lost connection, as for its appends.
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _append(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._append_statement, (rows, self._lock_timeout), prepare=True)
            return [row["id"] for row in cursor.fetchall()]
