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

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict
from domain.ids import stream_id
from domain.safe_text import clean_text, clean_value
from domain.vocabulary import TERMINAL

TERMINAL_STATUSES = frozenset(TERMINAL)


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
        TOPIC = "tpc:Run.Completed"
        status: str
        termination_reason: str | None
        stats: dict[str, Any]
        transcript_ref: str | None
        error: str | None

    class SignalsExtracted(Aggregate.Event):
        TOPIC = "tpc:Run.SignalsExtracted"
        config_hash: str
        values: dict[str, dict[str, Any]]

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
        self.stats: dict[str, Any] = {}
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
        stats: dict[str, Any],
        transcript_ref: str | None,
        error: str | None = None,
    ) -> None:
        self._check_not_terminal()
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"not a terminal status: {status}")
        self._completed(
            status,
            termination_reason,
            clean_value(stats),
            transcript_ref,
            None if error is None else clean_text(error),
        )

    def record_signals(self, config_hash: str, values: dict[str, dict[str, Any]]) -> None:
        self._signals_extracted(config_hash, clean_value(values))

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
        stats: dict[str, Any],
        transcript_ref: str | None,
        error: str | None,
    ) -> None:
        self.status = status
        self.termination_reason = termination_reason
        self.stats = stats
        self.transcript_ref = transcript_ref
        self.error = error

    @event(SignalsExtracted)
    def _signals_extracted(self, config_hash: str, values: dict[str, dict[str, Any]]) -> None:
        pass

    @event(Cancelled)
    def _cancelled(self) -> None:
        self.status = "cancelled"
        self.termination_reason = "cancelled"
