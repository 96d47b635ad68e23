"""The dashboard benchmark runs (on a small iteration): no timing is asserted here."""

from __future__ import annotations

import pytest

from tests.benchmark_modules import benchmark


def test_every_page_is_served_and_timed(capsys: pytest.CaptureFixture[str]) -> None:
    figures = benchmark("dashboard").main(["--quick", "--requests", "2"])
    assert set(figures) == {
        "baseline",
        "experiments",
        "experiment",
        "iteration results",
        "run",
        "history",
    }
    assert all(ms > 0 for ms in figures.values())
    assert "iteration results" in capsys.readouterr().out
