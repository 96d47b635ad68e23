"""TPC_DATABASE_URL and the PostgreSQL pool settings: the forms accepted, and one clear error
naming what to set for everything else."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from application.service import Service
from infra.settings import PostgresPool, Settings, SettingsError
from infra.store.opening import open_database
from tests.conftest import ROOT
from tests.e2e.server import TPC


def test_the_url_selects_the_store() -> None:
    sqlite = Settings(database_url="sqlite:///var/tpc/tpc.db")
    assert (sqlite.database_kind, sqlite.sqlite_path) == ("sqlite", Path("var/tpc/tpc.db"))
    for scheme in ("postgresql", "postgres"):
        pg = Settings(database_url=f"{scheme}://tpc:s3cret@db.internal:6432/tpc")
        assert pg.is_postgres
        assert pg.postgres_params == {
            "user": "tpc",
            "password": "s3cret",
            "host": "db.internal",
            "port": "6432",
            "dbname": "tpc",
        }
        assert pg.redacted_database_url == f"{scheme}://tpc:***@db.internal:6432/tpc"
    assert Settings(database_url="postgresql://db/tpc").postgres_params == {
        "host": "db",
        "dbname": "tpc",
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "unsupported TPC_DATABASE_URL 'mysql://db/x': use sqlite:///"),
        ("sqlite://relative.db", "use sqlite:///path/to/tpc.db or postgresql://user@host"),
        ("postgresql://db.internal", "names no database: use sqlite:///"),
        ("postgresql://tpc@db/tpc?sslmode=require", "set other libpq options through PG*"),
        (
            "postgresql://tpc@127.0.0.1:1/tpc",
            "cannot connect to the PostgreSQL database postgresql://tpc@127.0.0.1:1/tpc",
        ),
    ],
)
def test_an_unusable_url_is_one_clear_error(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        open_database(Settings(database_url=url)).close()
    assert message in str(error.value)


def test_pool_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TPC_POSTGRES_"):
            monkeypatch.delenv(name)
    assert Settings.from_env().postgres == PostgresPool()
    monkeypatch.setenv("TPC_POSTGRES_POOL_SIZE", "1")
    monkeypatch.setenv("TPC_POSTGRES_MAX_OVERFLOW", "0")
    monkeypatch.setenv("TPC_POSTGRES_LOCK_TIMEOUT", "3")
    monkeypatch.setenv("TPC_POSTGRES_CONNECT_TIMEOUT", "7")
    assert Settings.from_env().postgres == PostgresPool(1, 0, 3, 7)
    monkeypatch.setenv("TPC_POSTGRES_TABLES_MAX_OVERFLOW", "0")
    assert Settings.from_env().postgres == PostgresPool(1, 0, 3, 7, tables_max_overflow=0)
    monkeypatch.setenv("TPC_POSTGRES_TABLES_MAX_OVERFLOW", "-1")
    with pytest.raises(SettingsError, match="TPC_POSTGRES_TABLES_MAX_OVERFLOW"):
        Settings.from_env()
    monkeypatch.setenv("TPC_POSTGRES_TABLES_MAX_OVERFLOW", "0")
    monkeypatch.setenv("TPC_POSTGRES_LOCK_TIMEOUT", "0")
    with pytest.raises(SettingsError, match="TPC_POSTGRES_LOCK_TIMEOUT must be a positive"):
        Settings.from_env()
    monkeypatch.setenv("TPC_POSTGRES_LOCK_TIMEOUT", "3")
    monkeypatch.setenv("TPC_POSTGRES_POOL_SIZE", "few")
    with pytest.raises(SettingsError, match="TPC_POSTGRES_POOL_SIZE must be a positive number"):
        Settings.from_env()


def test_a_small_pool_is_enough(postgres_url: str) -> None:
    """One connection per pool still serves a command (the schema lock has its own)."""
    from application.service import Service

    service = Service(
        Settings(database_url=postgres_url, postgres=PostgresPool(1, 0, tables_max_overflow=0))
    )
    try:
        assert service.catalog.bootstrap("small-pool") is not None
        assert service.views.has_products()
    finally:
        service.close()


def tpc(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TPC, *args],
        env={**os.environ, "TPC_DATABASE_URL": url, "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_db_migrate_creates_then_finds_the_schema_current(store_url: str) -> None:
    created = tpc(store_url, "db", "migrate")
    assert created.returncode == 0, created.stderr
    assert "Applied migration 1: blobs" in created.stdout
    assert "Views: created (version" in created.stdout
    again = tpc(store_url, "db", "migrate", "--format", "json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["store"] == ("sqlite" if store_url.startswith("sqlite") else "postgresql")
    assert report["migrations_applied"] == []
    assert report["views"]["rebuilt"] is False


def test_db_migrate_on_an_unusable_url_says_what_to_set() -> None:
    done = tpc("oracle://db/x", "db", "migrate")
    assert done.returncode == 1
    assert "unsupported TPC_DATABASE_URL 'oracle://db/x'" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_without_postgresql_its_tests_skip_except_under_ci(ci: str, outcome: str) -> None:
    test = f"{Path(__file__).relative_to(ROOT)}::test_a_small_pool_is_enough"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", test],
        env={**os.environ, "CI": ci, "TPC_TEST_POSTGRES_URL": "postgresql://x@127.0.0.1:1/x"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert outcome in done.stdout, done.stdout
    assert "PostgreSQL is not reachable at postgresql://x@127.0.0.1:1/x" in done.stdout
    if ci:
        assert "under CI the PostgreSQL tests must run" in done.stdout


def test_a_new_sqlite_store_is_its_owners_only(tmp_path: Path) -> None:
    """Agents' commands run as another user on the same machine: they must not read the
    store (every tenant's data and secrets)."""
    folder = tmp_path / "world-readable" / ".tpc"
    folder.parent.mkdir(mode=0o755)
    service = Service(Settings(database_url=f"sqlite:///{folder / 'tpc.db'}"))
    service.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for file in folder.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o755  # not ours to change
