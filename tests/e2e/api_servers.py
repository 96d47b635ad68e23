"""A real `tpc serve` per store shared by a test module: SQLite, and PostgreSQL on the test
session's database (emptied first, so the server bootstraps its own product)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.server import Server


def empty_postgres(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET lock_timeout = '10s'")
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
    return url


def serve_store(
    request: pytest.FixtureRequest, home: Path, environ: dict[str, str] | None = None
) -> Iterator[Server]:
    """A started server on the store `request.param` names; stopped afterwards."""
    url = None
    if request.param == "postgresql":
        url = empty_postgres(request.getfixturevalue("postgres_database"))
    running = Server(home, database_url=url, environ=environ).start()
    try:
        yield running
    finally:
        running.stop()
