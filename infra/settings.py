"""Settings from the environment (docs/spec.md §8–9): where the store is, the API address, the
token."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from domain.api_tokens import token_problem
from domain.errors import DomainError

DEFAULT_DATABASE_URL = "sqlite:///.tpc/tpc.db"
DATABASE_URL_FORMS = "sqlite:///path/to/tpc.db or postgresql://user@host:5432/dbname"


class SettingsError(DomainError):
    """A TPC_* setting that cannot be used; the message says which and what to set instead."""


DEFAULT_API_URL = "http://127.0.0.1:8642"


@dataclass(frozen=True)
class PostgresPool:
    """Connections each process opens to PostgreSQL. The event store and our tables each keep
    a pool of `pool_size`, growing under load by up to `max_overflow` (the event store's: its
    saves go together, a few connections write them all) and `tables_max_overflow` (our
    tables': every request's read holds one while its query runs, so it follows the requests
    a server answers at once). The views' catch-ups have one connection, and a process that
    follows the log adds one listening connection. Every server and worker has its own, and
    PostgreSQL allows 100 connections by default."""

    pool_size: int = 2
    max_overflow: int = 4
    # Seconds a save waits for the event table's lock before failing (and being retried).
    lock_timeout_s: int = 10
    connect_timeout_s: int = 10
    # Under the mixed load (`benchmarks/load.py`, 30 clients) requests/s rose with this
    # pool up to 16 connections and no further (docs/performance.md).
    tables_max_overflow: int = 14


@dataclass(frozen=True)
class Limits:
    """What one product may ask of the server at once (docs/deployment.md, "Limits"): each is
    refused with a status and a message naming the setting that raises it."""

    # A request body, in bytes (413).
    max_body_bytes: int = 16 * 1024 * 1024
    # A signal config's YAML text, in bytes (413).
    max_signal_config_bytes: int = 1024 * 1024
    # Runs one iteration may plan: tasks × environments × repeats (422).
    max_runs_per_iteration: int = 10_000
    # Iterations of one product running at once (429 at trigger).
    max_running_iterations: int = 20

    @classmethod
    def from_env(cls) -> Limits:
        defaults = cls()
        return cls(
            max_body_bytes=_number("TPC_MAX_BODY_BYTES", 1, defaults.max_body_bytes),
            max_signal_config_bytes=_number(
                "TPC_MAX_SIGNAL_CONFIG_BYTES", 1, defaults.max_signal_config_bytes
            ),
            max_runs_per_iteration=_number(
                "TPC_MAX_RUNS_PER_ITERATION", 1, defaults.max_runs_per_iteration
            ),
            max_running_iterations=_number(
                "TPC_MAX_RUNNING_ITERATIONS", 1, defaults.max_running_iterations
            ),
        )


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    api_token: str | None = None
    # The key of the token hashes (TPC_TOKEN_KEY); None: the store's own random key.
    token_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8642
    # Runs executed at once by the in-process executor.
    concurrency: int = 16
    run_workers: bool = True
    credentials_path: Path = field(default_factory=lambda: Path.home() / ".tpc" / "credentials")
    # How often projections poll the log when nothing woke them.
    poll_interval_s: float = 0.2
    postgres: PostgresPool = field(default_factory=PostgresPool)
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "database_url": env.get("TPC_DATABASE_URL", DEFAULT_DATABASE_URL),
            "api_token": _api_token(env.get("TPC_API_TOKEN")),
            "token_key": _token_key(env.get("TPC_TOKEN_KEY")),
        }
        if env.get("TPC_CONCURRENCY"):
            values["concurrency"] = _number("TPC_CONCURRENCY", 1)
        if env.get("TPC_POLL_INTERVAL"):
            values["poll_interval_s"] = _seconds("TPC_POLL_INTERVAL")
        defaults = PostgresPool()
        values["postgres"] = PostgresPool(
            pool_size=_number("TPC_POSTGRES_POOL_SIZE", 1, defaults.pool_size),
            max_overflow=_number("TPC_POSTGRES_MAX_OVERFLOW", 0, defaults.max_overflow),
            lock_timeout_s=_number("TPC_POSTGRES_LOCK_TIMEOUT", 1, defaults.lock_timeout_s),
            connect_timeout_s=_number(
                "TPC_POSTGRES_CONNECT_TIMEOUT", 1, defaults.connect_timeout_s
            ),
            tables_max_overflow=_number(
                "TPC_POSTGRES_TABLES_MAX_OVERFLOW", 0, defaults.tables_max_overflow
            ),
        )
        values["limits"] = Limits.from_env()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def database_kind(self) -> Literal["sqlite", "postgresql"]:
        if self.database_url.startswith("sqlite:///"):
            return "sqlite"
        if self.database_url.startswith(("postgresql://", "postgres://")):
            return "postgresql"
        raise SettingsError(
            f"unsupported TPC_DATABASE_URL {self.database_url!r}: use {DATABASE_URL_FORMS}"
        )

    @property
    def is_postgres(self) -> bool:
        return self.database_kind == "postgresql"

    @property
    def redacted_database_url(self) -> str:
        """TPC_DATABASE_URL fit to print: a password becomes `***`."""
        scheme, sep, rest = self.database_url.partition("://")
        credentials, at, location = rest.rpartition("@")
        if not sep or not at or ":" not in credentials:
            return self.database_url
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{location}"

    @property
    def sqlite_path(self) -> Path:
        if self.database_kind != "sqlite":
            raise SettingsError(f"TPC_DATABASE_URL {self.database_url!r} is not a SQLite file")
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def postgres_params(self) -> dict[str, str]:
        """libpq connection parameters from a `postgresql://` URL (user, password, host,
        port, dbname, and any `?key=value` such as `sslmode`)."""
        from psycopg.conninfo import conninfo_to_dict

        if self.database_kind != "postgresql":
            raise SettingsError(f"TPC_DATABASE_URL {self.database_url!r} is not PostgreSQL")
        try:
            params = conninfo_to_dict(self.database_url)
        except Exception as error:  # psycopg.ProgrammingError: a malformed URL
            raise SettingsError(
                f"TPC_DATABASE_URL {self.database_url!r} is not a valid PostgreSQL URL "
                f"({error}): use {DATABASE_URL_FORMS}"
            ) from None
        if not params.get("dbname"):
            raise SettingsError(
                f"TPC_DATABASE_URL {self.database_url!r} names no database: "
                f"use {DATABASE_URL_FORMS}"
            )
        return {key: str(value) for key, value in params.items() if value is not None}

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"


# A key shorter than this is refused: the hashes are only as strong as the key.
MIN_TOKEN_KEY_LENGTH = 32


def _api_token(raw: str | None) -> str | None:
    """TPC_API_TOKEN in the one form tokens have (stripped); refused when no request could
    present it (inner whitespace), rather than creating a product nobody can sign in to."""
    if raw is None or raw == "":
        return None
    problem = token_problem(raw)
    if problem is not None:
        raise SettingsError(f"TPC_API_TOKEN {problem}: set a token without spaces, or unset it")
    return raw.strip()


def _token_key(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    key = raw.strip()
    if len(key) < MIN_TOKEN_KEY_LENGTH or any(char.isspace() for char in key):
        raise SettingsError(
            f"TPC_TOKEN_KEY must be at least {MIN_TOKEN_KEY_LENGTH} characters without spaces"
            " (e.g. the output of `openssl rand -hex 32`)"
        )
    return key


def _number(name: str, minimum: int, default: int = 0) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    # ASCII digits only ("²".isdigit() is true), and short enough to be a sane number.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < minimum:
        kind = "a positive number" if minimum else "a number (0 or more)"
        raise SettingsError(f"{name} must be {kind} (got {raw!r})")
    return int(raw)


def _seconds(name: str) -> float:
    raw = os.environ[name]
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise SettingsError(f"{name} must be a positive number of seconds (got {raw!r})")
    return value
