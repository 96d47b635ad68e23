"""The Iteration aggregate: one trigger of an experiment, frozen at birth and immutable once
completed. Its creation event, ConfigFrozen, is the source of truth for what the iteration
runs: the signal config, the task and environment definitions, and the run list."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel, ConfigDict, field_serializer

from domain.clusters import RECORDED_CLUSTERS, SUGGESTIONS, RecordedCluster, Suggestion
from domain.definitions import EnvironmentDefinition, TaskDefinition
from domain.errors import Conflict
from domain.event_payloads import PayloadField, modelled, typed_payload
from domain.ids import iteration_stream_id
from domain.safe_text import clean_value
from domain.signals.config import SignalConfig
from domain.vocabulary import IterationStatus


@dataclass(frozen=True, slots=True)
class PlannedRun:
    run_id: str
    task_id: str
    environment_id: str
    repeat: int

    def to_json(self) -> list[Any]:
        return [self.run_id, self.task_id, self.environment_id, self.repeat]

    @classmethod
    def from_json(cls, row: list[Any]) -> PlannedRun:
        return cls(str(row[0]), str(row[1]), str(row[2]), int(row[3]))


class FrozenSignalConfig(BaseModel):
    """An iteration's signal config as frozen at its trigger: the YAML text, its parsed form
    and the text's hash. Stored with `parsed` as `SignalConfig.to_json` writes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    parsed: SignalConfig
    hash: str

    @field_serializer("parsed")
    def _parsed_json(self, parsed: SignalConfig) -> dict[str, Any]:
        return parsed.to_json()


# Rows of [run id, task id, environment id, repeat]: ten thousand runs stay a compact event.
_PLANNED_RUNS = PayloadField(
    lambda rows: [PlannedRun.from_json(row) for row in rows],
    lambda runs: [run.to_json() for run in runs],
)


def plan_runs(
    task_ids: list[str], env_ids: list[str], repeats: int, run_ids: list[str]
) -> list[PlannedRun]:
    """Tasks × environments × repeats, in that order, each with one of the given run ids."""
    combos = [(t, e, r) for t in task_ids for e in env_ids for r in range(repeats)]
    if len(run_ids) != len(combos):
        raise ValueError(f"need {len(combos)} run ids, got {len(run_ids)}")
    return [PlannedRun(rid, t, e, r) for rid, (t, e, r) in zip(run_ids, combos, strict=True)]


def plan_rescore(source: list[PlannedRun], run_ids: list[str]) -> list[PlannedRun]:
    """A re-score's runs: the source iteration's task × environment × repeat, in its order,
    each with one of the given new run ids (run `i` re-scores the source's run `i`)."""
    if len(run_ids) != len(source):
        raise ValueError(f"need {len(source)} run ids, got {len(run_ids)}")
    return [
        PlannedRun(rid, run.task_id, run.environment_id, run.repeat)
        for rid, run in zip(run_ids, source, strict=True)
    ]


class Iteration(Aggregate):
    TOPIC = "tpc:Iteration"

    # The library derives a `Created` class for every aggregate; with stable topics it needs
    # one too, although `ConfigFrozen` is the creation event actually used.
    class Created(Aggregate.Created):
        TOPIC = "tpc:Iteration.Created"

    class ConfigFrozen(Created):
        """What the iteration runs. Version 2 holds models (stored as their JSON); version 1
        held the same JSON written from plain dicts, its definitions as the catalog kept them
        then: fields added to the definitions since take their defaults when it is read."""

        TOPIC = "tpc:Iteration.ConfigFrozen"
        class_version = 2
        payload = typed_payload(
            signal_config=modelled(FrozenSignalConfig | None),
            tasks=modelled(dict[str, TaskDefinition]),
            environments=modelled(dict[str, EnvironmentDefinition]),
            runs=_PLANNED_RUNS,
        )
        experiment_id: str
        product_id: str
        number: int
        signal_config: FrozenSignalConfig | None
        tasks: dict[str, TaskDefinition]
        environments: dict[str, EnvironmentDefinition]
        runs: list[PlannedRun]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1's JSON is version 2's: nothing moves; the models are made on load."""

    class RescoreOf(Aggregate.Event):
        """This iteration re-scores iteration `source`: its runs take the source runs'
        recorded transcripts and outcomes instead of running agents (`source_runs[i]` is the
        source of `runs[i]`). A separate event, saved with ConfigFrozen, so that ConfigFrozen's
        payload (and every stored one) stays as it is."""

        TOPIC = "tpc:Iteration.RescoreOf"
        source: int
        source_runs: list[str]

    class Imported(Aggregate.Event):
        """This iteration was imported from recorded logs (`format`): its runs run no agent,
        run `runs[i]` takes the stored transcript `transcripts[i]`, read where `sources[i]`
        says ([run id, file, sample or null]). Saved with ConfigFrozen, like RescoreOf."""

        TOPIC = "tpc:Iteration.Imported"
        format: str
        transcripts: list[str]
        sources: list[list[Any]]

    class CancelRequested(Aggregate.Event):
        TOPIC = "tpc:Iteration.CancelRequested"

    class ClustersRecorded(Aggregate.Event):
        """The failing runs grouped into clusters (docs/spec.md §7), recorded once so that replaying
        the log never clusters again (nor calls a model that named them). Version 2 holds
        models (stored as their JSON); version 1 stored the same JSON from dicts."""

        TOPIC = "tpc:Iteration.ClustersRecorded"
        class_version = 2
        payload = typed_payload(clusters=RECORDED_CLUSTERS, suggestions=SUGGESTIONS)
        clusters: list[RecordedCluster]
        suggestions: list[Suggestion]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1's JSON is version 2's: nothing moves; the models are made on load."""

    class Completed(Aggregate.Event):
        TOPIC = "tpc:Iteration.Completed"
        status: IterationStatus  # completed | cancelled

    @staticmethod
    def create_id(experiment_id: str, number: int, **_: Any) -> UUID:
        return iteration_stream_id(experiment_id, number)

    @event(ConfigFrozen)
    def __init__(
        self,
        experiment_id: str,
        product_id: str,
        number: int,
        signal_config: FrozenSignalConfig | None,
        tasks: dict[str, TaskDefinition],
        environments: dict[str, EnvironmentDefinition],
        runs: list[PlannedRun],
    ) -> None:
        self.experiment_id = experiment_id
        self.product_id = product_id
        self.number = number
        self.signal_config = signal_config
        self.tasks = tasks
        self.environments = environments
        self.runs = runs
        self.cancel_requested = False
        self.status: IterationStatus = "running"
        self.rescore_of: int | None = None
        self._source_runs: dict[str, str] = {}
        self.imported_from: str | None = None  # the format of the logs it was imported from
        self._imported: dict[str, str] = {}

    @cached_property
    def _runs_by_id(self) -> dict[str, PlannedRun]:
        return {run.run_id: run for run in self.runs}

    def planned(self, run_id: str) -> PlannedRun:
        return self._runs_by_id[run_id]

    @property
    def label(self) -> str:
        return f"{self.experiment_id} iteration {self.number}"

    def source_run(self, run_id: str) -> str:
        """The source run a re-score's run takes its transcript and outcome from."""
        return self._source_runs[run_id]

    def derive_from(self, source: Iteration) -> None:
        """Make this new iteration a re-score of `source`, whose runs it mirrors one to one
        (`plan_rescore`); saved in the same batch as its ConfigFrozen."""
        self.check_open()
        if self.rescore_of is not None:
            raise Conflict(f"{self.label} already re-scores iteration {self.rescore_of}")
        if self.imported_from is not None:
            raise Conflict(f"{self.label} is imported from {self.imported_from} logs")
        if source.status == "running":
            raise Conflict(
                f"{source.label} is still running: only a completed or cancelled iteration "
                "can be re-scored"
            )
        mirrored = [(r.task_id, r.environment_id, r.repeat) for r in self.runs]
        if mirrored != [(r.task_id, r.environment_id, r.repeat) for r in source.runs]:
            raise ValueError("a re-score's runs must mirror its source's (plan_rescore)")
        self._rescore_of(source.number, [run.run_id for run in source.runs])

    def imported_transcript(self, run_id: str) -> str:
        """The stored transcript an imported iteration's run takes."""
        return self._imported[run_id]

    def import_logs(self, format: str, transcripts: list[str], sources: list[list[Any]]) -> None:
        """Make this new iteration an import of recorded logs: `transcripts[i]` (a stored
        transcript) is run `i`'s, read from `sources[i]` ([file, sample or null]); saved
        with its ConfigFrozen."""
        self.check_open()
        if self.rescore_of is not None or self.imported_from is not None:
            raise Conflict(f"{self.label} already takes its runs from elsewhere")
        if not len(transcripts) == len(sources) == len(self.runs):
            raise ValueError("an import needs one transcript and one source per run")
        placed = [[run.run_id, *source] for run, source in zip(self.runs, sources, strict=True)]
        self._imported_event(format, transcripts, placed)

    def check_open(self) -> None:
        if self.status != "running":
            raise Conflict(f"{self.label} is {self.status} and accepts no further change")

    def request_cancel(self) -> None:
        self.check_open()
        if not self.cancel_requested:
            self._cancel_requested()

    def record_clusters(
        self, clusters: list[RecordedCluster], suggestions: list[Suggestion]
    ) -> None:
        self.check_open()
        # Named and explained by a model when one is configured: its text is cleaned, not
        # refused (`domain.safe_text`).
        self._clusters_recorded(
            _cleaned(RECORDED_CLUSTERS, clusters), _cleaned(SUGGESTIONS, suggestions)
        )

    def complete(self) -> None:
        """Close the iteration once every run is terminal (the caller checks that)."""
        self.check_open()
        ended: IterationStatus = "cancelled" if self.cancel_requested else "completed"
        self._completed(ended)

    @event(RescoreOf)
    def _rescore_of(self, source: int, source_runs: list[str]) -> None:
        self.rescore_of = source
        self._source_runs = {
            run.run_id: source_run for run, source_run in zip(self.runs, source_runs, strict=True)
        }

    @event(Imported)
    def _imported_event(
        self, format: str, transcripts: list[str], sources: list[list[Any]]
    ) -> None:
        self.imported_from = format
        self._imported = {run.run_id: ref for run, ref in zip(self.runs, transcripts, strict=True)}

    @event(CancelRequested)
    def _cancel_requested(self) -> None:
        self.cancel_requested = True

    @event(ClustersRecorded)
    def _clusters_recorded(
        self, clusters: list[RecordedCluster], suggestions: list[Suggestion]
    ) -> None:
        self.clusters = clusters

    @event(Completed)
    def _completed(self, status: IterationStatus) -> None:
        self.status = status


def _cleaned(field: PayloadField, values: list[Any]) -> list[Any]:
    """`values` with `clean_value` applied to their JSON; `values` themselves when clean."""
    stored = field.dump(values)
    cleaned = clean_value(stored)
    return values if cleaned is stored else list(field.load(cleaned))
