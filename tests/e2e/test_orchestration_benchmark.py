"""The orchestration benchmark runs (`--quick`): it is code too. No timing is asserted here."""

from __future__ import annotations

import pytest

from tests.benchmark_modules import benchmark
from tests.conftest import POSTGRES_ADMIN_URL


def test_the_quick_run_completes_and_prints_the_efficiency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures = benchmark("orchestration").main(["--quick"])
    printed = capsys.readouterr().out
    assert "separate process" in printed
    assert "efficiency" in printed and "ideal makespan" in printed
    assert figures["sqlite"]["status"] == "completed"
    assert figures["sqlite"]["counts"] == {"passed": figures["sqlite"]["runs"]}


def test_the_quick_run_on_tpc_worker_processes_completes(
    postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `postgres_database`: skipped (failed under CI) like the other PostgreSQL tests.
    arguments = ["--quick", "--no-sqlite", "--workers", "2", "--postgres", POSTGRES_ADMIN_URL]
    figures = benchmark("orchestration").main(arguments)
    printed = capsys.readouterr().out
    assert "2 `tpc worker` processes" in printed and "efficiency" in printed
    assert figures["postgres"]["workers"] == 2
    assert figures["postgres"]["status"] == "completed"
    assert figures["postgres"]["counts"] == {"passed": figures["postgres"]["runs"]}
