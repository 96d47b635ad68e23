"""The Run aggregate: one task × environment (× repeat) of an iteration, on its own stream so
that thousands of runs finishing at once never contend on one aggregate.

A run's stream is opened when it is first touched (started or cancelled); until then the run
exists only in its iteration's ConfigFrozen event, and is `queued`.

What a run records comes from its agent (messages, errors, stats, signal evidence): data, not a
request. Text no store can keep (a NUL character, a lone surrogate) is cleaned here, replaced
by U+FFFD, so that every executor's save passes the store's guard and no run is lost to what
its model printed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel, ConfigDict

from domain.errors import Conflict
from domain.event_payloads import PayloadField, typed_payload
from domain.ids import stream_id
from domain.safe_text import clean_text, clean_value
from domain.signals.extraction import Evidence, SignalValue
from domain.stats import RunStats
from domain.vocabulary import TERMINAL

TERMINAL_STATUSES = frozenset(TERMINAL)


class RecordedStats(BaseModel):
    """A run's recorded stats: the built-in ones (`domain.stats.RunStats`; None when not
    known) and, as extra fields, what else the run spent (`judge_cost`, `user_token_in`, …).
    Its JSON holds the fields it was given, no more: what was recorded is what is shown."""

    model_config = ConfigDict(frozen=True, extra="allow")

    duration: float | None = None
    token_in: int | None = None
    token_out: int | None = None
    token_total: int | None = None
    cost: float | None = None
    tool_calls: int | None = None
    steps: int | None = None
    turns: int | None = None
    status: str | None = None
    termination_reason: str | None = None
    model: str | None = None

    @classmethod
    def of(cls, stats: RunStats, *extras: Mapping[str, Any]) -> RecordedStats:
        """The built-in stats of a run, with what else it spent."""
        merged = stats.to_json()
        for extra in extras:
            merged.update(extra)
        return cls.model_validate(merged)

    def to_json(self) -> dict[str, Any]:
        """The fields it was given, as JSON (an event's `stats`, a run row's)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def spent(self) -> dict[str, Any]:
        """The extra fields: what the run spent beside the built-in stats."""
        return dict(self.model_extra or {})


class SignalValues(Mapping[str, SignalValue]):
    """A run's signal values by signal id (`Run.SignalsExtracted.values`). Read from the
    log, they are made from their JSON when first looked at: a projection that stores the
    JSON as it is never builds them."""

    __slots__ = ("_json", "_values")

    def __init__(
        self,
        values: Mapping[str, SignalValue] | None = None,
        *,
        json: Mapping[str, Any] | None = None,
    ) -> None:
        if values is None and json is None:
            raise TypeError("give the values, their JSON or both")
        self._values = None if values is None else dict(values)
        self._json = None if json is None else dict(json)

    @classmethod
    def from_json(cls, json: dict[str, Any]) -> SignalValues:
        """The values of this JSON object (kept as it is: decoded for this event alone)."""
        if type(json) is not dict:
            raise TypeError(f"signal values must be an object, not {type(json).__name__}")
        values = object.__new__(cls)
        values._values = None
        values._json = json
        return values

    def to_json(self) -> dict[str, dict[str, Any]]:
        """As `SignalValue.to_json` writes each value."""
        if self._json is None:
            assert self._values is not None
            self._json = signal_values_to_json(self._values)
        return self._json

    def _decoded(self) -> dict[str, SignalValue]:
        if self._values is None:
            assert self._json is not None
            self._values = signal_values_from_json(self._json)
        return self._values

    def __getitem__(self, signal_id: str) -> SignalValue:
        return self._decoded()[signal_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json if self._json is not None else self._decoded())

    def __len__(self) -> int:
        return len(self._json if self._json is not None else self._decoded())

    def __repr__(self) -> str:
        return f"SignalValues({self._decoded()!r})"


def signal_values_from_json(values: Mapping[str, Any]) -> dict[str, SignalValue]:
    """Signal values as `SignalValue.to_json` writes them (an event's `values`)."""
    return {
        signal_id: SignalValue(
            item["value"],
            tuple(
                Evidence(found["event"], found["snippet"], found.get("pattern"))
                for found in item["evidence"]
            ),
            item.get("error"),
        )
        for signal_id, item in values.items()
    }


def signal_values_to_json(values: Mapping[str, SignalValue]) -> dict[str, dict[str, Any]]:
    return {signal_id: value.to_json() for signal_id, value in values.items()}


_STATS = PayloadField(RecordedStats.__pydantic_validator__.validate_python, RecordedStats.to_json)
_SIGNAL_VALUES = PayloadField(SignalValues.from_json, SignalValues.to_json)


class Run(Aggregate):
    TOPIC = "tpc:Run"

    # The library derives a `Created` class for every aggregate; with stable topics it needs
    # one too, although `Opened` is the creation event actually used.
    class Created(Aggregate.Created):
        TOPIC = "tpc:Run.Created"

    class Opened(Created):
        TOPIC = "tpc:Run.Opened"
        run_id: str
        experiment_id: str
        number: int
        task_id: str
        environment_id: str
        repeat: int

    class Started(Aggregate.Event):
        TOPIC = "tpc:Run.Started"
        attempt: int

    class MessagesRecorded(Aggregate.Event):
        """Transcript messages of the current attempt as they happen (live logs); `first` is
        the index of the first one. The complete transcript comes with `Completed`."""

        TOPIC = "tpc:Run.MessagesRecorded"
        attempt: int
        first: int
        messages: list[dict[str, Any]]

    class Completed(Aggregate.Event):
        """The attempt's outcome. Version 2 holds `stats` as `RecordedStats` (stored as its
        JSON); version 1 stored the same JSON from a plain dict."""

        TOPIC = "tpc:Run.Completed"
        class_version = 2
        payload = typed_payload(stats=_STATS)
        status: str
        termination_reason: str | None
        stats: RecordedStats
        transcript_ref: str | None
        error: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1's JSON is version 2's: nothing moves; the model is made on load."""

    class SignalsExtracted(Aggregate.Event):
        """Every signal's value under the config `config_hash` names. Version 2 holds
        `SignalValues` (stored as `SignalValue.to_json` writes each); version 1 stored the
        same JSON from plain dicts."""

        TOPIC = "tpc:Run.SignalsExtracted"
        class_version = 2
        payload = typed_payload(values=_SIGNAL_VALUES)
        config_hash: str
        values: SignalValues

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1's JSON is version 2's: nothing moves; the values are made on load."""

    class Cancelled(Aggregate.Event):
        TOPIC = "tpc:Run.Cancelled"

    @staticmethod
    def create_id(run_id: str, **_: Any) -> UUID:
        return stream_id(run_id)

    @event(Opened)
    def __init__(
        self,
        run_id: str,
        experiment_id: str,
        number: int,
        task_id: str,
        environment_id: str,
        repeat: int,
    ) -> None:
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.number = number
        self.task_id = task_id
        self.environment_id = environment_id
        self.repeat = repeat
        self.attempts = 0
        self.status = "queued"
        # The recorded outcome (what a re-score of this run keeps).
        self.termination_reason: str | None = None
        self.stats = RecordedStats()
        self.transcript_ref: str | None = None
        self.error: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def _check_not_terminal(self) -> None:
        if self.is_terminal:
            raise Conflict(f"run {self.run_id} is already {self.status}")

    def start(self) -> int:
        """Begin an attempt (a retry after a crash is attempt 2, …)."""
        self._check_not_terminal()
        self._started(self.attempts + 1)
        return self.attempts

    def record_messages(self, first: int, messages: list[dict[str, Any]]) -> None:
        """Append live messages of the running attempt."""
        if self.status != "running":
            raise Conflict(f"run {self.run_id} is {self.status}, not running")
        self._messages_recorded(self.attempts, first, clean_value(messages))

    def complete(
        self,
        status: str,
        termination_reason: str | None,
        stats: RecordedStats,
        transcript_ref: str | None,
        error: str | None = None,
    ) -> None:
        self._check_not_terminal()
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"not a terminal status: {status}")
        recorded = stats.to_json()
        cleaned = clean_value(recorded)
        self._completed(
            status,
            termination_reason,
            stats if cleaned is recorded else RecordedStats.model_validate(cleaned),
            transcript_ref,
            None if error is None else clean_text(error),
        )

    def record_signals(self, config_hash: str, values: Mapping[str, SignalValue]) -> None:
        recorded = signal_values_to_json(values)
        cleaned = clean_value(recorded)
        self._signals_extracted(
            config_hash,
            SignalValues(values, json=recorded)
            if cleaned is recorded
            else SignalValues(json=cleaned),
        )

    def cancel(self) -> None:
        self._check_not_terminal()
        self._cancelled()

    @event(Started)
    def _started(self, attempt: int) -> None:
        self.attempts = attempt
        self.status = "running"

    @event(MessagesRecorded)
    def _messages_recorded(self, attempt: int, first: int, messages: list[dict[str, Any]]) -> None:
        pass

    @event(Completed)
    def _completed(
        self,
        status: str,
        termination_reason: str | None,
        stats: RecordedStats,
        transcript_ref: str | None,
        error: str | None,
    ) -> None:
        self.status = status
        self.termination_reason = termination_reason
        self.stats = stats
        self.transcript_ref = transcript_ref
        self.error = error

    @event(SignalsExtracted)
    def _signals_extracted(self, config_hash: str, values: SignalValues) -> None:
        pass

    @event(Cancelled)
    def _cancelled(self) -> None:
        self.status = "cancelled"
        self.termination_reason = "cancelled"
