"""The benchmarks run (on a tiny corpus): they are code too. No timing is asserted here."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmark_modules import benchmark

extract_benchmark: Any = benchmark("extract")


def test_extract_benchmark_runs_and_reports_a_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    figures = extract_benchmark.main(["--runs", "20", "--mb", "0.4"])
    printed = capsys.readouterr().out
    assert "ratio (bare loop time / pipeline time)" in printed
    assert figures["ratio"] > 0
    assert figures["parse"] > 0 and figures["extract"] > 0


def test_generated_corpus_is_deterministic_and_parses() -> None:
    first = extract_benchmark.generate_corpus(5, 0.05)
    assert first == extract_benchmark.generate_corpus(5, 0.05)
    config = extract_benchmark.benchmark_config()
    assert len(config.signals) == 13
