"""Opening the database `TPC_DATABASE_URL` names: the one place that knows both adapters, so
that the port (`database.py`) and each adapter import only downwards."""

from __future__ import annotations

from infra.settings import Settings
from infra.store.database import Database


def open_database(settings: Settings) -> Database:
    """The database `TPC_DATABASE_URL` names (a `SettingsError` says what to set when it is
    unusable)."""
    if settings.database_kind == "postgresql":
        # Each adapter is imported when chosen: it loads its own driver.
        from infra.store.postgres import PostgresDatabase

        return PostgresDatabase(settings.postgres_params, settings.postgres)
    from infra.store.sqlite import SqliteDatabase

    return SqliteDatabase(settings.sqlite_path)
