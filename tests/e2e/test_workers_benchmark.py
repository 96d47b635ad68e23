"""The distributed-workers benchmark runs (on 100 runs, 1 and 2 workers): it is code too. It
needs PostgreSQL as the other PostgreSQL tests do (skipped when unreachable, failed under CI);
no timing is asserted here."""

from __future__ import annotations

import pytest

from tests.benchmark_modules import benchmark
from tests.conftest import POSTGRES_ADMIN_URL


@pytest.mark.timeout(600)
def test_workers_benchmark_completes_and_prints_its_table(
    postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `postgres_database` is there for its skip (or CI failure) when PostgreSQL is away; the
    # benchmark makes a database of its own per measurement with the same role.
    figures = benchmark("workers").main(
        ["--quick", "--runs", "100", "--postgres", POSTGRES_ADMIN_URL]
    )
    printed = capsys.readouterr().out
    assert "trigger → completed" in printed
    for name in ("SQLite, tpc serve (in-process)", "PostgreSQL, 1 worker", "PostgreSQL, 2 workers"):
        assert name in printed
    assert "what a run costs the database" in printed
    assert set(figures) == {"sqlite", "pg_1", "pg_2"}
    for figure in figures.values():
        assert figure["status"] == "completed"
        assert figure["runs"] == 100
