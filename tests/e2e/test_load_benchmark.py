"""The mixed-load benchmark runs (3 clients, two rounds of 2 s on each store): it is code
too. It needs PostgreSQL as the other PostgreSQL tests do (skipped when unreachable, failed
under CI); no timing is asserted here."""

from __future__ import annotations

import pytest

from tests.benchmark_modules import benchmark
from tests.conftest import POSTGRES_ADMIN_URL


@pytest.mark.timeout(300)
def test_load_benchmark_loses_nothing_on_either_store(
    postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `postgres_database` is there for its skip (or CI failure) when PostgreSQL is away; the
    # benchmark makes a database of its own with the same role.
    figures = benchmark("load").main(
        ["--clients", "3", "--seconds", "2", "--postgres", POSTGRES_ADMIN_URL]
    )
    printed = capsys.readouterr().out
    assert "PostgreSQL ÷ SQLite requests/s" in printed
    assert len(figures["compare"]["round_ratios"]) == 2
    for store in ("sqlite", "postgres"):
        figure = figures[store]
        assert figure["requests"] > 0 and figure["rounds"] == 2
        assert figure["requests"] == sum(len(v) for v in figure["latencies"].values())
        assert figure["errors"] == {}
        assert figure["experiments_lost"] == 0
        assert figure["iterations_unfinished"] == 0
        assert set(figure["ops"]) <= {"list", "results", "create", "trigger"}
