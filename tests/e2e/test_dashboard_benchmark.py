"""The dashboard benchmark runs (on a small iteration): no timing is asserted here."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytest

from tests.conftest import ROOT


def _load() -> Any:
    spec = importlib.util.spec_from_file_location(
        "dashboard_benchmark", ROOT / "benchmarks" / "dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dashboard_benchmark"] = module
    spec.loader.exec_module(module)
    return module


def test_every_page_is_served_and_timed(capsys: pytest.CaptureFixture[str]) -> None:
    figures = _load().main(["--quick", "--requests", "2"])
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
