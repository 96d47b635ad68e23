"""A full disk is a clean JSON 507 (`storage_full`), never a 500, and nothing is half-saved.

On SQLite the file is capped for real (`PRAGMA max_page_count`, which SQLite enforces as it
would a full disk, with the same SQLITE_FULL error) on every connection the server opens,
its event store's and its own, while a real server runs in this process. PostgreSQL's
DiskFull (SQLSTATE 53100) cannot be provoked on a shared test server: its translation is
checked with the driver's own exception class.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from api.http.app import create_app
from application.service import Service
from domain.catalog import Task
from domain.errors import StorageFull
from infra.settings import Settings
from tests.e2e.server import free_port, in_process

TOKEN = "full-token"


class PageCap:
    """Every SQLite connection opened meanwhile, so that a cap applies to all of them (it is a
    per-connection setting), those opened later included."""

    def __init__(self) -> None:
        self.connections: list[sqlite3.Connection] = []
        self.pages: int | None = None
        self._connect = sqlite3.connect

    def connect(self, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = self._connect(*args, **kwargs)
        self.connections.append(connection)
        if self.pages is not None:
            connection.execute(f"PRAGMA max_page_count = {self.pages}")
        return connection

    def cap(self, path: Path, extra_pages: int) -> None:
        with self._connect(path) as probe:
            self.pages = int(probe.execute("PRAGMA page_count").fetchone()[0]) + extra_pages
        for connection in self.connections:
            connection.execute(f"PRAGMA max_page_count = {self.pages}")


@pytest.fixture
def page_cap(monkeypatch: pytest.MonkeyPatch) -> PageCap:
    cap = PageCap()
    # Both our adapter and eventsourcing's call `sqlite3.connect` when they open a connection.
    monkeypatch.setattr(sqlite3, "connect", cap.connect)
    return cap


@pytest.fixture
def running(tmp_path: Path, page_cap: PageCap) -> Iterator[str]:
    """A real server on a SQLite file, in this process (so that the cap reaches it)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'tpc.db'}",
        api_token=TOKEN,
        port=free_port(),
        run_workers=False,
        credentials_path=tmp_path / "credentials",
    )
    with in_process(create_app(settings), settings.port) as url:
        yield url


def test_a_full_sqlite_store_answers_507_and_keeps_what_it_had(
    running: str, page_cap: PageCap, tmp_path: Path
) -> None:
    client = httpx.Client(
        base_url=running, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with client:
        kept = [
            client.post("/v1/tasks", json={"name": f"kept {i}", "prompt": "p"}).json()["id"]
            for i in range(3)
        ]
        page_cap.cap(tmp_path / "tpc.db", extra_pages=40)
        statuses = []
        for i in range(60):
            # Random text does not compress: each task takes a few pages of the cap.
            body = {"name": f"big {i}", "prompt": secrets.token_hex(8000)}
            response = client.post("/v1/tasks", json=body)
            statuses.append(response.status_code)
            if response.status_code != 201:
                break
        assert statuses[-1] == 507, statuses
        assert set(statuses[:-1]) <= {201}
        error = response.json()["error"]
        assert error["code"] == "storage_full"
        assert "out of space" in error["message"]
        saved_anyway = "the change was saved" in error["message"]

        # What was there is intact and still served.
        for task_id in kept:
            assert client.get(f"/v1/tasks/{task_id}").status_code == 200
        listed = client.get("/v1/tasks", params={"limit": 200}).json()["items"]
        names = [t["name"] for t in listed]
        assert names[:3] == ["kept 0", "kept 1", "kept 2"]
        assert names[3:] == [f"big {i}" for i in range(len(statuses) - 1)]

        # Space is freed (the cap lifted): writes work again, and the views catch up on
        # anything saved before the store filled.
        page_cap.cap(tmp_path / "tpc.db", extra_pages=100_000)
        created = client.post("/v1/tasks", json={"name": "after", "prompt": "p"})
        assert created.status_code == 201, created.text
        # A 507 that said the change was saved: the views show it now; else it never was.
        names = [t["name"] for t in client.get("/v1/tasks", params={"limit": 200}).json()["items"]]
        refused = f"big {len(statuses) - 1}"
        assert (refused in names) == saved_anyway
        health = client.get("/healthz").json()["projection"]
        assert health["position"] == health["head"]
        assert health["failures"] == 0
    with sqlite3.connect(tmp_path / "tpc.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def fill(service: Service, product_id: str) -> None:
    """Create large tasks until the store refuses one."""
    for i in range(50):
        service.catalog.create_task(
            product_id, {"name": f"big {i}", "prompt": secrets.token_hex(8000)}
        )


def raise_wrapped(error: psycopg.Error) -> None:
    """Raise `error` as eventsourcing's recorder wraps a driver error."""
    try:
        raise error
    except psycopg.Error as driver_error:
        raise OperationalError(driver_error) from driver_error


def write_then_raise(database: Any, error: Exception) -> None:
    """Insert a row into one of our own tables, then fail with `error` before committing."""
    with database.write() as db:
        db.execute("INSERT INTO blobs (ref, data) VALUES ('sha256:x', '\\x00')")
        raise error


def test_a_full_sqlite_store_saves_nothing_of_a_refused_save(
    tmp_path: Path, page_cap: PageCap
) -> None:
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'tpc.db'}"))
    try:
        boot = service.catalog.bootstrap(TOKEN)
        assert boot is not None
        page_cap.cap(tmp_path / "tpc.db", extra_pages=2)
        head = service.store.last_position()
        with pytest.raises(StorageFull):
            fill(service, boot.product_id)
        # Each save is whole or absent: every event in the log loads, and the views, once
        # space is freed, reach the log's head.
        for position in range(head + 1, service.store.last_position() + 1):
            assert service.store.notifications(position - 1, 1)[0].id == position
        page_cap.cap(tmp_path / "tpc.db", extra_pages=100_000)
        assert service.projector.catch_up() == service.store.last_position()
        assert service.projector.status()["failures"] == []
    finally:
        service.close()


def test_postgresql_disk_full_is_storage_full_and_not_a_data_failure(postgres_url: str) -> None:
    service = Service(Settings(database_url=postgres_url))
    try:
        database = service.database
        full = psycopg.errors.DiskFull("could not extend file: No space left on device")
        assert database.is_storage_full(full)
        # As eventsourcing's recorder wraps it.
        with pytest.raises(OperationalError) as wrapped:
            raise_wrapped(full)
        assert database.is_storage_full(wrapped.value)
        assert database.is_transient(wrapped.value)
        # Our own tables' writes: rolled back, and said as StorageFull.
        with pytest.raises(StorageFull):
            write_then_raise(database, full)
        assert database.read("SELECT count(*) FROM blobs")[0][0] == 0
        # A value the driver cannot send is about the data: not transient.
        assert not database.is_transient(psycopg.DataError("NUL in text"))
        assert database.is_transient(psycopg.OperationalError("connection lost"))
    finally:
        service.close()


def test_a_full_disk_stops_the_views_and_skips_nothing(tmp_path: Path, page_cap: PageCap) -> None:
    service = Service(Settings(database_url=f"sqlite:///{tmp_path / 'tpc.db'}"))
    try:
        boot = service.catalog.bootstrap(TOKEN)
        assert boot is not None
        owner = boot.product_id
        # Saved by another process, say; the views (uncompressed JSON) need more room than
        # the event, and find none.
        big = {"name": "big", "prompt": secrets.token_hex(20_000)}
        service.store.save(Task(public_id="task_big", product_id=owner, definition=big))
        page_cap.cap(tmp_path / "tpc.db", extra_pages=0)
        with pytest.raises(StorageFull):
            service.projector.catch_up()
        status = service.projector.status()
        assert status["lag"] == 1
        assert status["failures"] == []  # a full disk is not the event's fault

        page_cap.cap(tmp_path / "tpc.db", extra_pages=100_000)
        assert service.projector.catch_up() == service.store.last_position()
        assert service.views.task(owner, "task_big").name == "big"
        assert service.projector.status()["failures"] == []
    finally:
        service.close()
