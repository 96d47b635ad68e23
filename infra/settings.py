"""Settings from the environment (SPEC §8–9): where the store is, the API address, the token."""

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
    a pool of `pool_size` (growing by up to `max_overflow` under load); a process that follows
    the log adds one listening connection. Keep them small: every server and worker has its
    own, and PostgreSQL allows 100 connections by default."""

    pool_size: int = 2
    max_overflow: int = 4
    # Seconds a save waits for the event table's lock before failing (and being retried).
    lock_timeout_s: int = 10
    connect_timeout_s: int = 10


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
        )
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
    if not raw.isdigit() or int(raw) < minimum:
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
