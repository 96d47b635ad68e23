"""The read models: what `Views` (projections/queries.py) answer, as the API, the dashboard and
the CLI read them. One definition each: the routes serialise them with `document`, the
dashboard reads their attributes, `/openapi.json` takes its answer schemas from them
(api/http/responses.py) and the CLI parses answers into them.

A field that is left unset is left out of the answer (`document` drops unset fields): that is
how an optional key (a run's `source`, an experiment's `as_of`, a status's `warnings`, the
results' `compare`) is absent rather than null, and how a task defined before a field existed
is answered as it was stored."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from domain.statistics import CONFIDENCES
from domain.vocabulary import IterationStatus as IterationState
from domain.vocabulary import RunState

Confidence = Annotated[float, Field(json_schema_extra={"enum": list(CONFIDENCES)})]


class ReadModel(BaseModel):
    """A read model: immutable, and open to keys a newer server adds (the CLI parses answers
    from servers of other versions)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


M = TypeVar("M", bound=ReadModel)


def document(model: ReadModel) -> dict[str, Any]:
    """The model as the API answers it: JSON values, unset optional keys left out."""
    return model.model_dump(mode="json", exclude_unset=True)


def json_document(model: ReadModel) -> bytes:
    """`document(model)` as compact JSON text (UTF-8, non-ASCII kept, as JSONResponse writes)."""
    return model.__pydantic_serializer__.to_json(model, exclude_unset=True)


class Page(ReadModel, Generic[M]):
    """One page of a list: `next_cursor` is the `cursor` of the next page, None on the last."""

    items: list[M]
    next_cursor: str | None


# -- catalogue --------------------------------------------------------------------------------


class TaskView(ReadModel):
    """A task: its definition (domain/definitions.py `TaskDefinition`) with id and time."""

    id: str
    name: str
    prompt: str
    success: dict[str, Any] | None = None
    user: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str


class AgentView(ReadModel):
    """An environment's agent; a replay agent's `transcripts` are counts per key."""

    model_config = ConfigDict(frozen=True, extra="allow")

    kind: str


class EnvironmentView(ReadModel):
    id: str
    name: str
    agent: AgentView
    limits: dict[str, Any] = Field(default_factory=dict)
    created_at: str


# -- experiments ------------------------------------------------------------------------------


class SignalConfigRef(ReadModel):
    hash: str
    text: str


class ExperimentView(ReadModel):
    """An experiment; `as_of` only when it is shown as it stood at a log position."""

    id: str
    name: str
    task_ids: list[str]
    env_ids: list[str]
    repeats: int
    signal_config: SignalConfigRef | None
    iterations: int
    created_at: str
    version: int
    as_of: int | None = None


class AuditEvent(ReadModel):
    position: int
    time: str
    type: str
    summary: str
    stream: Literal["experiment", "iteration", "run"]
    id: str


# -- iterations -------------------------------------------------------------------------------


class RunCounts(ReadModel):
    total: int
    queued: int = 0
    running: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    timed_out: int = 0
    cancelled: int = 0


class ImportSummary(ReadModel):
    """What an imported iteration was read from."""

    format: str
    runs: int
    files: int


class IterationStatus(ReadModel):
    """An iteration's progress; `warnings` only in the answer to the command that made it."""

    experiment_id: str
    iteration: int
    status: IterationState
    runs: RunCounts
    config_hash: str | None
    cancel_requested: bool
    created_at: str
    completed_at: str | None
    rescore_of: int | None
    imported: ImportSummary | None
    warnings: list[str] | None = None


class Results(ReadModel):
    """An iteration's results at a confidence; `compare` only when asked for. The summary,
    clusters and suggestions are docs/results.md's shapes."""

    experiment_id: str
    iteration: int
    status: str
    config_hash: str | None
    rescore_of: int | None
    imported: ImportSummary | None
    confidence: Confidence
    summary: dict[str, Any]
    failure_clusters: list[dict[str, Any]]
    suggestions: list[Any]
    compare: dict[str, Any] | None = None


# -- runs -------------------------------------------------------------------------------------


class RunSource(ReadModel):
    """Where an imported run's transcript was read."""

    file: str | None
    sample: str | None


class RunRow(ReadModel):
    """A run; `source` only for a run of an imported iteration."""

    id: str
    experiment_id: str
    iteration: int
    task_id: str
    environment_id: str
    repeat: int
    status: RunState
    termination_reason: str | None
    attempts: int
    stats: dict[str, Any] | None
    error: str | None
    signals: dict[str, Any]
    started_at: str | None
    ended_at: str | None
    source: RunSource | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status not in ("queued", "running")


class RunLog(ReadModel):
    """A page of a run's messages (each `{"index", …message}`): ask again with `after` =
    `next` until `done`. `transcript_ref` is for the server only (never answered)."""

    run_id: str
    status: RunState
    attempt: int
    messages: list[dict[str, Any]]
    next: int
    done: bool
    transcript_ref: str | None = Field(default=None, exclude=True)


# Pydantic keeps a parametrized model only while something refers to it: the pages the server
# answers would otherwise be built again after every garbage collection (≈ 30 µs a list).
PAGES: tuple[type[Page[Any]], ...] = (
    Page[TaskView],
    Page[EnvironmentView],
    Page[ExperimentView],
    Page[AuditEvent],
    Page[IterationStatus],
    Page[RunRow],
)
