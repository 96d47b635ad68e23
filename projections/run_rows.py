"""The run views' rows (`v_runs`, their audit rows, `v_live_messages`), folded from run events.

Run events are most of the log. Rather than a statement or two per event, a batch folds them
per run and writes each table with one statement per batch (`executemany`, or `insert_rows`
for complete rows: a COPY on PostgreSQL):

- The rows an iteration's ConfigFrozen plans wait in memory with the run events: the events
  that follow (usually in the same batch) change them there, and each row is inserted once,
  final; the iteration's results are computed from them as it completes, without reading
  them back. The rebuild keeps them across its batches (one transaction) for that.
- Run events for rows already written become one UPDATE per run per batch.
- Audit rows of waiting runs are complete in memory; others are filled from `v_runs`.

The batch is written before any event whose handler needs the rows (`views.BATCH_HANDLERS`)
and at the end of each catch-up batch.

Live messages (`Run.MessagesRecorded`, for `run logs --follow`) are kept for the current
attempt only: a new attempt starts its log afresh, and a completed run's stored transcript
supersedes them, so the table holds little more than the runs in flight. A cancelled run has
no transcript: its live messages are what remains of it, and stay. They are not history:
the audit trail leaves them out (one row per message batch would drown it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.iteration_key import IterationKey
from domain.iterations import PlannedRun
from domain.runs import Run
from domain.vocabulary import RunState, RunStatus, TerminationReason
from infra.store.database import Connection
from projections.view_values import json_text

RUN_EVENTS = (
    Run.Opened,
    Run.Started,
    Run.MessagesRecorded,
    Run.Completed,
    Run.SignalsExtracted,
    Run.Cancelled,
)
RUN_EVENT_TYPES = frozenset(RUN_EVENTS)
AUDIT_COLUMNS = (
    "position",
    "product_id",
    "experiment_id",
    "stream",
    "id",
    "version",
    "time",
    "type",
    "summary",
)

# `v_runs` in table order, as a waiting row holds it.
RUN_COLUMNS = (
    "id",
    "stream",
    "product_id",
    "experiment_id",
    "number",
    "seq",
    "task_id",
    "environment_id",
    "repeat",
    "status",
    "termination_reason",
    "attempts",
    "stats",
    "error",
    "transcript_ref",
    "signals",
    "signal_values",
    "started_at",
    "ended_at",
)
_COLUMN = {name: i for i, name in enumerate(RUN_COLUMNS)}
_ID, _STREAM, _PRODUCT, _EXPERIMENT, _TASK, _ENVIRONMENT = (
    _COLUMN[name]
    for name in ("id", "stream", "product_id", "experiment_id", "task_id", "environment_id")
)
_STATUS, _STATS, _SIGNAL_VALUES = _COLUMN["status"], _COLUMN["stats"], _COLUMN["signal_values"]


# What a run event changes: the columns it sets, and a function of the event (and its time)
# giving their values and its audit summary after `run <id>`.
RunChange = Callable[[Any, str], tuple[tuple[Any, ...], str]]


def _started(e: Any, time: str) -> tuple[tuple[Any, ...], str]:
    state: RunState = "running"
    return (state, e.attempt, time), f" started (attempt {e.attempt})"


def _completed(e: Any, time: str) -> tuple[tuple[Any, ...], str]:
    reason = f" ({e.termination_reason})" if e.termination_reason else ""
    error = f": {e.error}" if e.error else ""
    values = (
        e.status,
        e.termination_reason,
        json_text(e.stats.to_json()),
        e.error,
        e.transcript_ref,
        time,
    )
    return values, f" {e.status}{reason}{error}"


def _signals_extracted(e: Any, time: str) -> tuple[tuple[Any, ...], str]:
    # The values alone, too: results read them for every run, evidence only for one.
    stored = e.values.to_json()  # the JSON it was read from: no value is built
    values = {sid: item.get("value") for sid, item in stored.items()}
    failed = sum(1 for v in stored.values() if v.get("error"))
    note = f", {failed} failed" if failed else ""
    return (json_text(stored), json_text(values)), f": {len(stored)} signals extracted{note}"


def _cancelled(e: Any, time: str) -> tuple[tuple[Any, ...], str]:
    status: RunStatus = "cancelled"
    reason: TerminationReason = "cancelled"
    return (status, reason, time), " cancelled"


RUN_CHANGES: dict[type, tuple[tuple[str, ...], RunChange]] = {
    Run.Started: (("status", "attempts", "started_at"), _started),
    Run.Completed: (
        ("status", "termination_reason", "stats", "error", "transcript_ref", "ended_at"),
        _completed,
    ),
    Run.SignalsExtracted: (("signals", "signal_values"), _signals_extracted),
    Run.Cancelled: (("status", "termination_reason", "ended_at"), _cancelled),
}
# The same columns as positions in a waiting row.
_CHANGED_INDEXES = {
    kind: tuple(_COLUMN[name] for name in names) for kind, (names, _) in RUN_CHANGES.items()
}
_RUN_KINDS: dict[type, type] = {}
_AUDIT_TYPES: dict[type, str] = {}


def _run_kind(cls: type) -> type:
    """The run event class (of `RUN_EVENTS`) an event class is."""
    kind = _RUN_KINDS.get(cls)
    if kind is None:
        kind = _RUN_KINDS[cls] = next(k for k in RUN_EVENTS if issubclass(cls, k))
    return kind


def _audit_type(cls: type) -> str:
    """The event type the audit trail shows (its topic, without the prefix)."""
    name = _AUDIT_TYPES.get(cls)
    if name is None:
        name = _AUDIT_TYPES[cls] = cls.TOPIC.removeprefix("tpc:")  # type: ignore[attr-defined]
    return name


LIVE_CLEAR_CHUNK = 500


class RunEventBatch:
    """Run events folded per run, waiting to be written in a few statements."""

    def __init__(self) -> None:
        # Planned rows of iterations still open, not written yet: by run id, by stream once
        # opened, by iteration; and rows of completed iterations, final, to write.
        self._planned: dict[str, list[Any]] = {}
        self._planned_streams: dict[str, list[Any]] = {}
        self._iterations: dict[IterationKey, list[list[Any]]] = {}
        self._settled: list[list[Any]] = []
        # Changes to rows already written.
        self._opened: list[tuple[str, str]] = []
        self._changes: dict[str, dict[str, Any]] = {}
        # Audit rows: complete ones, and ones to fill from the run's row (by stream).
        self._audit_rows: list[tuple[Any, ...]] = []
        self._audit: list[tuple[Any, ...]] = []
        # Live messages: runs whose stored ones go, then rows to write, per run stream.
        self._live_cleared: set[str] = set()
        self._live: dict[str, list[tuple[int, int, str]]] = {}
        self._last_id: Any = None
        self._last_stream = ""

    @property
    def open_rows(self) -> int:
        """Rows of open iterations waiting."""
        return len(self._planned)

    def plan(
        self,
        product_id: str,
        experiment_id: str,
        number: int,
        planned: list[PlannedRun],
        db: Connection,
    ) -> None:
        """The queued rows of a new iteration's runs."""
        if (
            self._opened
            or self._changes
            or self._audit
            or self._live_cleared
            or any(stream not in self._planned_streams for stream in self._live)
        ):
            # Changes to rows written already go first, as they did before these rows existed.
            self.flush(db)
        rows = self._iterations.setdefault(IterationKey(experiment_id, number), [])
        for seq, run in enumerate(planned):
            row: list[Any] = [None] * len(RUN_COLUMNS)
            row[:10] = (  # the first columns of RUN_COLUMNS
                run.run_id,
                None,
                product_id,
                experiment_id,
                number,
                seq,
                run.task_id,
                run.environment_id,
                run.repeat,
                "queued",
            )
            row[_COLUMN["attempts"]] = 0
            if run.run_id in self._planned:
                # Fails as the table makes it fail (its primary key), as soon as planned.
                self.flush(db)
                db.insert_rows("v_runs", RUN_COLUMNS, [row])
            self._planned[run.run_id] = row
            rows.append(row)

    def iteration_rows(self, experiment_id: str, number: int) -> list[tuple[Any, ...]] | None:
        """What results need of an iteration's runs, when its rows are all still here."""
        rows = self._iterations.get(IterationKey(experiment_id, number))
        if rows is None:
            return None
        return [
            (
                row[_ID],
                row[_TASK],
                row[_ENVIRONMENT],
                row[_STATUS],
                row[_STATS],
                row[_SIGNAL_VALUES],
            )
            for row in rows
        ]

    def settle(self, experiment_id: str, number: int) -> None:
        """The iteration completed: its rows are final, to be written with the next flush
        (should an event still come for one of its runs, it updates the written row)."""
        rows = self._iterations.pop(IterationKey(experiment_id, number), None)
        if rows is None:
            return
        for row in rows:
            del self._planned[row[_ID]]
            if row[_STREAM] is not None:
                del self._planned_streams[row[_STREAM]]
        self._settled.extend(rows)

    def add(self, e: Any, position: int) -> None:
        cls = type(e)
        kind = _RUN_KINDS.get(cls) or _run_kind(cls)
        # A run's events come together, with one id object (`EventStore.read_events`).
        originator_id = e.originator_id
        if originator_id is self._last_id:
            stream = self._last_stream
        else:
            stream = self._last_stream = str(originator_id)
            self._last_id = originator_id
        if kind is Run.Opened:
            planned = self._planned.get(e.run_id)
            if planned is None:
                self._opened.append((stream, e.run_id))
            else:
                if planned[_STREAM] is not None:
                    self._planned_streams.pop(planned[_STREAM], None)
                planned[_STREAM] = stream
                self._planned_streams[stream] = planned
            return
        if kind is Run.MessagesRecorded:
            rows = self._live.setdefault(stream, [])
            rows.extend(
                (e.attempt, e.first + offset, json_text(message))
                for offset, message in enumerate(e.messages)
            )
            return
        row = self._planned_streams.get(stream)
        if (kind is Run.Started and e.attempt > 1) or (
            kind is Run.Completed and e.transcript_ref is not None
        ):
            if row is None:  # a row not written yet has no stored live messages
                self._live_cleared.add(stream)
            self._live.pop(stream, None)
        time = e.timestamp.isoformat()
        names, change = RUN_CHANGES[kind]
        values, summary = change(e, time)
        topic = _AUDIT_TYPES.get(cls) or _audit_type(cls)
        if row is None:
            self._changes.setdefault(stream, {}).update(zip(names, values, strict=True))
            self._audit.append((position, e.originator_version, time, topic, summary, stream))
            return
        for index, value in zip(_CHANGED_INDEXES[kind], values, strict=True):
            row[index] = value
        run_id = row[_ID]
        self._audit_rows.append(
            (
                position,
                row[_PRODUCT],
                row[_EXPERIMENT],
                "run",
                run_id,
                e.originator_version,
                time,
                topic,
                f"run {run_id}{summary}",
            )
        )

    def flush(self, db: Connection, keep_open: bool = False) -> None:
        """Write what waits; `keep_open`: all but the rows of open iterations (and the live
        messages of their runs), which keep waiting for their events."""
        if self._settled:
            db.insert_rows("v_runs", RUN_COLUMNS, self._settled)
        if self._planned and not keep_open:
            db.insert_rows("v_runs", RUN_COLUMNS, self._planned.values())
        if self._opened:
            db.executemany("UPDATE v_runs SET stream = ? WHERE id = ?", self._opened)
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for stream, columns in self._changes.items():
            names = tuple(sorted(columns))
            by_columns.setdefault(names, []).append((*(columns[n] for n in names), stream))
        for names, rows in by_columns.items():
            assignments = ", ".join(f"{name} = ?" for name in names)
            db.executemany(f"UPDATE v_runs SET {assignments} WHERE stream = ?", rows)
        if self._audit_rows:
            db.insert_rows("v_audit", AUDIT_COLUMNS, self._audit_rows)
        if self._audit:
            db.executemany(
                "INSERT INTO v_audit SELECT ?, product_id, experiment_id, 'run', id, ?, ?, ?,"
                " 'run ' || id || ? FROM v_runs WHERE stream = ?",
                self._audit,
            )
        self._flush_live(db, self._planned_streams if keep_open else {})
        if not keep_open:
            self._planned.clear()
            self._planned_streams.clear()
            self._iterations.clear()
        self._settled.clear()
        self._opened.clear()
        self._changes.clear()
        self._audit_rows.clear()
        self._audit.clear()

    def _flush_live(self, db: Connection, waiting: dict[str, Any]) -> None:
        streams = sorted(self._live_cleared)
        # One statement per chunk, not per run: most runs completing here had no live rows.
        for start in range(0, len(streams), LIVE_CLEAR_CHUNK):
            chunk = streams[start : start + LIVE_CLEAR_CHUNK]
            db.execute(
                "DELETE FROM v_live_messages WHERE run_id IN (SELECT id FROM v_runs"
                f" WHERE stream IN ({', '.join('?' * len(chunk))}))",
                chunk,
            )
        rows = [
            (*row, stream)
            for stream, items in self._live.items()
            if stream not in waiting
            for row in items
        ]
        if rows:
            # Last write wins on an index written twice, so a replay gives the same rows.
            db.executemany(
                "INSERT INTO v_live_messages (run_id, attempt, idx, message)"
                " SELECT id, ?, ?, ? FROM v_runs WHERE stream = ?"
                " ON CONFLICT (run_id, idx) DO UPDATE"
                " SET attempt = excluded.attempt, message = excluded.message",
                rows,
            )
        self._live_cleared.clear()
        self._live = {stream: items for stream, items in self._live.items() if stream in waiting}
