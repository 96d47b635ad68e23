"""Schema changes to our own tables that hold data (not the views: they are derived, and a
version mark rebuilds them from the log, see `projections/follower.py`; not the event table:
eventsourcing creates it).

Each migration runs once per database, in order, in one transaction with its record in
`schema_migrations`; its statements must also be safe on a database that already has the
change (`IF NOT EXISTS`), since stores older than this table have some of them. Never edit a
released migration: append a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from infra.store.database import Database


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    # DDL with the port's type names ({serial}, {int}, {bytes}).
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "blobs: content-addressed, compressed transcripts",
        ("CREATE TABLE IF NOT EXISTS blobs (ref TEXT PRIMARY KEY, data {bytes} NOT NULL)",),
    ),
    Migration(
        2,
        "product_secrets: values a product's agents may use (rotatable, erasable: not events)",
        (
            "CREATE TABLE IF NOT EXISTS product_secrets (product_id TEXT NOT NULL,"
            " name TEXT NOT NULL, value TEXT NOT NULL, updated_at TEXT NOT NULL,"
            " PRIMARY KEY (product_id, name))",
        ),
    ),
    Migration(
        4,
        "token key (keyed token hashes) and dashboard sessions",
        (
            "CREATE TABLE IF NOT EXISTS token_key"
            " (id {int} PRIMARY KEY, key TEXT NOT NULL, created_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS dashboard_sessions"
            " (id_hash TEXT PRIMARY KEY, product_id TEXT NOT NULL, token_id TEXT NOT NULL,"
            " created_at {int} NOT NULL, expires_at {int} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS dashboard_sessions_by_token"
            " ON dashboard_sessions (token_id)",
        ),
    ),
)

TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (number {int} PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


def apply_migrations(database: Database) -> list[Migration]:
    """Apply every migration this database has not had yet; returns those applied now.
    Idempotent. Call it under `database.schema_lock()`."""
    with database.write() as db:
        db.execute(database.ddl(TABLE))
        done = {row[0] for row in db.execute("SELECT number FROM schema_migrations").fetchall()}
        applied = [m for m in MIGRATIONS if m.number not in done]
        for migration in applied:
            for statement in migration.statements:
                db.execute(database.ddl(statement))
            db.execute(
                "INSERT INTO schema_migrations (number, name, applied_at) VALUES (?, ?, ?)",
                (migration.number, migration.name, datetime.now(UTC).isoformat()),
            )
    return applied
