"""The signals report (docs/spec.md §8): per-run values with evidence, and every aggregate per
group.

The same shape serves `tpc sim experiment signals` (runs keyed by `run_id`) and offline
`tpc sim signals extract` (runs keyed by the `transcript` file they came from).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.signals.aggregates import RunValues, compute_aggregates
from domain.signals.config import SignalConfig
from domain.signals.extraction import Extractor, SignalValue
from domain.signals.judging import JudgeKey, JudgeVerdict
from domain.stats import ModelPrice, derive_stats
from domain.transcripts import Transcript

# Runs whose transcript names no task or environment are grouped under this key.
UNKNOWN_GROUP = "unknown"


@dataclass(frozen=True, slots=True)
class ExtractedRun:
    """One run's extracted signals, with what identifies it and the groups it belongs to."""

    key: dict[str, Any]  # {"run_id": …} or {"transcript": …}
    task_id: str
    environment_id: str
    status: str | None
    signals: Mapping[str, SignalValue]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.key,
            "task_id": self.task_id,
            "environment_id": self.environment_id,
            "status": self.status,
            "signals": {sid: value.to_json() for sid, value in self.signals.items()},
        }


def extract_run(
    extractor: Extractor,
    key: dict[str, Any],
    transcript: Transcript,
    prices: Mapping[str, ModelPrice] | None = None,
    verdicts: Mapping[JudgeKey, JudgeVerdict] | None = None,
) -> ExtractedRun:
    return ExtractedRun(
        key=key,
        task_id=transcript.task_id or UNKNOWN_GROUP,
        environment_id=transcript.environment_id or UNKNOWN_GROUP,
        status=transcript.status,
        signals=extractor.extract(transcript, derive_stats(transcript, prices), verdicts),
    )


def signals_report(
    config: SignalConfig,
    config_hash: str | None,
    runs: Sequence[ExtractedRun],
    experiment_id: str | None = None,
    iteration: int | None = None,
) -> dict[str, Any]:
    """The §8 JSON document for a set of extracted runs."""
    values = [
        RunValues(
            task_id=run.task_id,
            environment_id=run.environment_id,
            values={sid: value.value for sid, value in run.signals.items()},
        )
        for run in runs
    ]
    return {
        "experiment_id": experiment_id,
        "iteration": iteration,
        "config_hash": config_hash,
        "aggregates": [result.to_json() for result in compute_aggregates(config, values)],
        "runs": [run.to_json() for run in runs],
    }
