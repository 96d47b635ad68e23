"""Settings from the environment (SPEC §8–9): where the store is, the API address, the token."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from domain.errors import DomainError

DEFAULT_DATABASE_URL = "sqlite:///.tpc/tpc.db"


class SettingsError(DomainError):
    """A TPC_* setting that cannot be used; the message says which and what to set instead."""


DEFAULT_API_URL = "http://127.0.0.1:8642"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    api_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8642
    # Runs executed at once by the in-process executor.
    concurrency: int = 16
    run_workers: bool = True
    credentials_path: Path = field(default_factory=lambda: Path.home() / ".tpc" / "credentials")
    # How often projections poll the log when nothing woke them.
    poll_interval_s: float = 0.2

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "database_url": env.get("TPC_DATABASE_URL", DEFAULT_DATABASE_URL),
            "api_token": env.get("TPC_API_TOKEN") or None,
        }
        if env.get("TPC_CONCURRENCY"):
            raw = env["TPC_CONCURRENCY"]
            if not raw.isdigit() or int(raw) < 1:
                raise SettingsError(f"TPC_CONCURRENCY must be a positive number (got {raw!r})")
            values["concurrency"] = int(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def sqlite_path(self) -> Path:
        if not self.database_url.startswith("sqlite:///"):
            raise SettingsError(
                f"unsupported TPC_DATABASE_URL {self.database_url!r}: "
                "use sqlite:///path/to/tpc.db (PostgreSQL support is on its way)"
            )
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"
