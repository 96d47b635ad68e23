from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from domain.transcripts import Transcript, parse_transcript

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent

# A PostgreSQL role allowed to create databases; each test session makes its own database.
POSTGRES_ADMIN_URL = os.environ.get(
    "TPC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STORES = ("sqlite", "postgresql")


@pytest.fixture
def golden() -> Transcript:
    return parse_transcript((FIXTURES / "golden_transcript.json").read_bytes(), "golden")


def _database_url(admin_url: str, dbname: str) -> str:
    params = {k: v for k, v in conninfo_to_dict(admin_url).items() if v is not None}
    user = params.get("user", "")
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    return f"postgresql://{user}{password}@{host}:{port}/{dbname}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database for this test session (`tpc_test_<random>`), dropped at the end.
    PostgreSQL unreachable: the tests that need it are skipped, except under CI, where they
    fail: CI must test both stores."""
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unreachable"
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({reason})"
        if os.environ.get("CI"):
            pytest.fail(
                f"{message}; under CI the PostgreSQL tests must run (.ci/run starts the "
                "server; set TPC_TEST_POSTGRES_URL to a role that may create databases)",
                pytrace=False,
            )
        pytest.skip(f"{message}; set TPC_TEST_POSTGRES_URL to run the PostgreSQL tests")
    name = f"tpc_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(POSTGRES_ADMIN_URL, name)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's database, emptied: every table, type and function of the last test is
    dropped (faster than a new database), so each test starts from a store never opened."""
    with psycopg.connect(postgres_database, autocommit=True) as db:
        # A connection a test left open must fail the reset, not hang it.
        db.execute("SET lock_timeout = '10s'")
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
    return postgres_database


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """TPC_DATABASE_URL of an empty store: a SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tpc.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def store_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgresql"
