"""The event-store benchmark runs (on tiny sizes): it is code too. No timing is asserted here."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmark_modules import benchmark

store_benchmark: Any = benchmark("store")


def test_store_benchmark_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    figures = store_benchmark.main(
        ["--quick", "--appends", "20", "--events", "1500", "--tasks", "3", "--repeats", "1"]
    )
    printed = capsys.readouterr().out
    assert "ratio (decode time / rebuild time)" in printed
    assert "trigger → iteration completed" in printed
    for name in ("single", "batch"):
        assert figures[f"append_{name}_eps"] > 0
        assert figures[f"append_{name}_raw_eps"] > 0
        assert figures[f"append_{name}_ratio"] > 0
    assert figures["rebuild_events"] >= 1500
    assert figures["rebuild_eps"] > 0 and figures["decode_eps"] > 0
    assert figures["projector_decode_eps"] > 0
    assert figures["rebuild_ratio"] > 0
    assert figures["e2e_status"] == "completed"
    assert figures["e2e_runs"] == 3 * 2 * 1
    assert figures["e2e_seconds"] > 0 and figures["e2e_ms_per_run"] > 0


def test_example_outcomes_carry_stats_and_signals() -> None:
    outcomes = store_benchmark.example_outcomes(store_benchmark.signal_config_text())
    assert len(outcomes) == 6
    for outcome in outcomes:
        assert outcome.ref.startswith("sha256:")
        assert outcome.stats.to_json()
        assert len(outcome.signals) == 10
