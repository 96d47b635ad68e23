"""What docs/spec.md §4.6 gives for the example transcripts, through the offline path: the expected
values that server-side tests compare their iterations with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.signals.extraction import Extractor
from domain.signals.report import extract_run, signals_report
from domain.signals.validation import load_signal_config
from domain.transcripts import parse_transcript
from infra.llm.prices import MODEL_PRICES
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def offline_report(config_path: Path, repeats: int) -> dict[str, Any]:
    """The signals report of every example transcript, each counted `repeats` times."""
    config = load_signal_config(config_path.read_text()).require_valid()
    extractor = Extractor(config)
    runs = [
        extract_run(
            extractor, {"transcript": p.stem}, parse_transcript(p.read_bytes()), MODEL_PRICES
        )
        for p in sorted((EXAMPLES / "transcripts").glob("*.json"))
        for _ in range(repeats)
    ]
    return signals_report(config, None, runs)
