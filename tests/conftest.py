from __future__ import annotations

from pathlib import Path

import pytest

from domain.transcripts import Transcript, parse_transcript

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def golden() -> Transcript:
    return parse_transcript((FIXTURES / "golden_transcript.json").read_bytes(), "golden")
