"""The read models: SQL tables kept up to date from the event log, one handler per event type.

Every view row is written in the same transaction as the tracking position (`follower.py`), so
a crash never applies an event twice or skips one. Handlers only use the event and the views
themselves, so replaying the log from zero rebuilds identical tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from domain.catalog import Environment, Product, Task
from domain.experiments import Experiment
from domain.iterations import Iteration, PlannedRun
from domain.results import RunRow, summarize
from domain.runs import Run
from domain.signals.config import SignalConfig
from infra.store.database import Connection, Database, Row

# One schema for both stores: `{serial}`, `{int}` are the port's type names (Database.ddl).
SCHEMA = """
CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position {int} NOT NULL);
CREATE TABLE IF NOT EXISTS v_products (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS v_tasks (
    seq {serial}, id TEXT NOT NULL UNIQUE, product_id TEXT NOT NULL,
    name TEXT NOT NULL, definition TEXT NOT NULL, created_at TEXT NOT NULL, version {int});
CREATE TABLE IF NOT EXISTS v_environments (
    seq {serial}, id TEXT NOT NULL UNIQUE, product_id TEXT NOT NULL,
    name TEXT NOT NULL, definition TEXT NOT NULL, created_at TEXT NOT NULL, version {int});
CREATE TABLE IF NOT EXISTS v_experiments (
    seq {serial}, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
    product_id TEXT NOT NULL, name TEXT NOT NULL, task_ids TEXT NOT NULL, env_ids TEXT NOT NULL,
    repeats {int} NOT NULL, config_text TEXT, config_hash TEXT, iterations {int} NOT NULL,
    created_at TEXT NOT NULL, version {int} NOT NULL);
CREATE TABLE IF NOT EXISTS v_iterations (
    experiment_id TEXT NOT NULL, number {int} NOT NULL, stream TEXT NOT NULL UNIQUE,
    product_id TEXT NOT NULL, status TEXT NOT NULL, total {int} NOT NULL,
    cancel_requested {int} NOT NULL DEFAULT 0, config TEXT, config_hash TEXT,
    tasks TEXT NOT NULL, environments TEXT NOT NULL, created_at TEXT NOT NULL,
    completed_at TEXT, results TEXT, clusters TEXT, PRIMARY KEY (experiment_id, number));
CREATE TABLE IF NOT EXISTS v_runs (
    id TEXT PRIMARY KEY, stream TEXT, product_id TEXT NOT NULL, experiment_id TEXT NOT NULL,
    number {int} NOT NULL, seq {int} NOT NULL, task_id TEXT NOT NULL,
    environment_id TEXT NOT NULL, repeat {int} NOT NULL, status TEXT NOT NULL,
    termination_reason TEXT, attempts {int} NOT NULL DEFAULT 0, stats TEXT, error TEXT,
    transcript_ref TEXT, signals TEXT, signal_values TEXT, started_at TEXT, ended_at TEXT);
CREATE INDEX IF NOT EXISTS v_runs_by_iteration ON v_runs (experiment_id, number, seq);
CREATE INDEX IF NOT EXISTS v_runs_by_stream ON v_runs (stream);
CREATE INDEX IF NOT EXISTS v_runs_by_status ON v_runs (experiment_id, number, status);
CREATE TABLE IF NOT EXISTS v_audit (
    position {int} PRIMARY KEY, product_id TEXT NOT NULL, experiment_id TEXT NOT NULL,
    stream TEXT NOT NULL, id TEXT NOT NULL, version {int} NOT NULL, time TEXT NOT NULL,
    type TEXT NOT NULL, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS v_audit_by_experiment ON v_audit (experiment_id, position);
CREATE TABLE IF NOT EXISTS v_live_messages (
    run_id TEXT NOT NULL, attempt {int} NOT NULL, idx {int} NOT NULL, message TEXT NOT NULL,
    PRIMARY KEY (run_id, idx));
"""
VIEW_TABLES = (
    "v_products",
    "v_tasks",
    "v_environments",
    "v_experiments",
    "v_iterations",
    "v_runs",
    "v_audit",
    "v_live_messages",
)


def create_schema(db: Connection, database: Database) -> None:
    # Statement by statement: SQLite's executescript() would commit the caller's transaction.
    for statement in database.ddl(SCHEMA).split(";"):
        if statement.strip():
            db.execute(statement)


def drop_views(db: Connection) -> None:
    for table in VIEW_TABLES:
        db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute("DELETE FROM tracking")


def _json(value: Any) -> str:
    """Compact JSON for view columns (pydantic-core's encoder: ~4x the json module's speed)."""
    return to_json(value).decode("utf-8")


def _time(event: Any) -> str:
    timestamp: datetime = event.timestamp
    return timestamp.isoformat()


Handler = Callable[[Connection, Any, int], None]
HANDLERS: dict[type, Handler] = {}


def handles(*kinds: type) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = handler
        return handler

    return register


def apply_events(db: Connection, events: Iterable[tuple[Any, int]]) -> None:
    """Fold events (with their log positions) into the views, in order; events no view needs
    are skipped."""
    runs = RunEventBatch()
    for event, position in events:
        if isinstance(event, RUN_EVENTS):
            runs.add(event, position)
            continue
        handler = HANDLERS.get(type(event))
        if handler is not None:
            runs.flush(db)  # other handlers may read the runs' rows
            handler(db, event, position)
    runs.flush(db)


def _audit(
    db: Connection,
    event: Any,
    position: int,
    experiment_id: str,
    product_id: str,
    stream: str,
    public_id: str,
    summary: str,
) -> None:
    db.execute(
        "INSERT INTO v_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            position,
            product_id,
            experiment_id,
            stream,
            public_id,
            event.originator_version,
            _time(event),
            type(event).TOPIC.removeprefix("tpc:"),
            summary,
        ),
    )


# -- catalog ----------------------------------------------------------------------------------


@handles(Product.Registered)
def _product_registered(db: Connection, e: Any, _: int) -> None:
    db.execute("INSERT INTO v_products VALUES (?, ?, ?)", (e.public_id, e.name, e.token_hash))


@handles(Task.Created, Environment.Created)
def _definition_created(db: Connection, e: Any, _: int) -> None:
    table = "v_tasks" if isinstance(e, Task.Created) else "v_environments"
    db.execute(
        f"INSERT INTO {table} (id, product_id, name, definition, created_at, version)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            e.public_id,
            e.product_id,
            e.definition["name"],
            _json(e.definition),
            _time(e),
            e.originator_version,
        ),
    )


# -- experiments ------------------------------------------------------------------------------


def _experiment(db: Connection, e: Any) -> Row:
    row: Row | None = db.execute(
        "SELECT * FROM v_experiments WHERE stream = ?", (str(e.originator_id),)
    ).fetchone()
    assert row is not None, f"experiment stream {e.originator_id} has no view row"
    return row


@handles(Experiment.Created)
def _experiment_created(db: Connection, e: Any, position: int) -> None:
    db.execute(
        "INSERT INTO v_experiments (id, stream, product_id, name, task_ids, env_ids, repeats,"
        " iterations, created_at, version) VALUES (?, ?, ?, ?, '[]', '[]', ?, 0, ?, ?)",
        (
            e.public_id,
            str(e.originator_id),
            e.product_id,
            e.name,
            e.repeats,
            _time(e),
            e.originator_version,
        ),
    )
    _audit(
        db,
        e,
        position,
        e.public_id,
        e.product_id,
        "experiment",
        e.public_id,
        f"created {e.name!r} (repeats {e.repeats})",
    )


def _experiment_change(
    column: str, summary: Callable[[Any], str], value: Callable[[Any, Row], Any]
) -> Handler:
    def handler(db: Connection, e: Any, position: int) -> None:
        row = _experiment(db, e)
        db.execute(
            f"UPDATE v_experiments SET {column} = ?, version = ? WHERE id = ?",
            (value(e, row), e.originator_version, row["id"]),
        )
        _audit(db, e, position, row["id"], row["product_id"], "experiment", row["id"], summary(e))

    return handler


def _add(column: str, attr: str) -> Callable[[Any, Row], str]:
    return lambda e, row: _json([*json.loads(row[column]), getattr(e, attr)])


def _remove(column: str, attr: str) -> Callable[[Any, Row], str]:
    return lambda e, row: _json([x for x in json.loads(row[column]) if x != getattr(e, attr)])


HANDLERS[Experiment.TaskAttached] = _experiment_change(
    "task_ids", lambda e: f"task {e.task_id} attached", _add("task_ids", "task_id")
)
HANDLERS[Experiment.TaskDetached] = _experiment_change(
    "task_ids", lambda e: f"task {e.task_id} detached", _remove("task_ids", "task_id")
)
HANDLERS[Experiment.EnvironmentAttached] = _experiment_change(
    "env_ids", lambda e: f"environment {e.env_id} attached", _add("env_ids", "env_id")
)
HANDLERS[Experiment.EnvironmentDetached] = _experiment_change(
    "env_ids", lambda e: f"environment {e.env_id} detached", _remove("env_ids", "env_id")
)
HANDLERS[Experiment.Renamed] = _experiment_change(
    "name", lambda e: f"renamed {e.name!r}", lambda e, _: e.name
)
HANDLERS[Experiment.RepeatsChanged] = _experiment_change(
    "repeats", lambda e: f"repeats set to {e.repeats}", lambda e, _: e.repeats
)
HANDLERS[Experiment.IterationStarted] = _experiment_change(
    "iterations", lambda e: f"iteration {e.number} triggered", lambda e, _: e.number
)


@handles(Experiment.SignalConfigSet, Experiment.SignalConfigCleared)
def _config_changed(db: Connection, e: Any, position: int) -> None:
    row = _experiment(db, e)
    is_set = isinstance(e, Experiment.SignalConfigSet)
    db.execute(
        "UPDATE v_experiments SET config_text = ?, config_hash = ?, version = ? WHERE id = ?",
        (
            e.text if is_set else None,
            e.config_hash if is_set else None,
            e.originator_version,
            row["id"],
        ),
    )
    summary = f"signal config set ({e.config_hash})" if is_set else "signal config cleared"
    _audit(db, e, position, row["id"], row["product_id"], "experiment", row["id"], summary)


# -- iterations -------------------------------------------------------------------------------


@handles(Iteration.ConfigFrozen)
def _iteration_frozen(db: Connection, e: Any, position: int) -> None:
    config = e.signal_config
    db.execute(
        "INSERT INTO v_iterations (experiment_id, number, stream, product_id, status, total,"
        " config, config_hash, tasks, environments, created_at)"
        " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
        (
            e.experiment_id,
            e.number,
            str(e.originator_id),
            e.product_id,
            len(e.runs),
            _json(config) if config else None,
            config["hash"] if config else None,
            _json(e.tasks),
            _json(e.environments),
            _time(e),
        ),
    )
    db.executemany(
        "INSERT INTO v_runs (id, product_id, experiment_id, number, seq, task_id,"
        " environment_id, repeat, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued')",
        [
            (
                run.run_id,
                e.product_id,
                e.experiment_id,
                e.number,
                seq,
                run.task_id,
                run.environment_id,
                run.repeat,
            )
            for seq, run in enumerate(PlannedRun.from_json(row) for row in e.runs)
        ],
    )
    hash_note = f", config {config['hash']}" if config else ", no signal config"
    _audit(
        db,
        e,
        position,
        e.experiment_id,
        e.product_id,
        "iteration",
        str(e.number),
        f"iteration {e.number} frozen: {len(e.runs)} runs, {len(e.tasks)} tasks × "
        f"{len(e.environments)} environments{hash_note}",
    )


def _iteration(db: Connection, e: Any) -> Row:
    row: Row | None = db.execute(
        "SELECT * FROM v_iterations WHERE stream = ?", (str(e.originator_id),)
    ).fetchone()
    assert row is not None, f"iteration stream {e.originator_id} has no view row"
    return row


def _iteration_audit(db: Connection, e: Any, position: int, row: Row, text: str) -> None:
    _audit(
        db,
        e,
        position,
        row["experiment_id"],
        row["product_id"],
        "iteration",
        str(row["number"]),
        text,
    )


@handles(Iteration.CancelRequested)
def _iteration_cancel_requested(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    db.execute("UPDATE v_iterations SET cancel_requested = 1 WHERE stream = ?", (row["stream"],))
    _iteration_audit(db, e, position, row, f"iteration {row['number']} cancel requested")


@handles(Iteration.ClustersRecorded)
def _iteration_clustered(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    db.execute(
        "UPDATE v_iterations SET clusters = ? WHERE stream = ?",
        (_json({"failure_clusters": e.clusters, "suggestions": e.suggestions}), row["stream"]),
    )
    names = ", ".join(f"{c['category']} ({c['size']})" for c in e.clusters[:5]) or "none"
    _iteration_audit(
        db,
        e,
        position,
        row,
        f"iteration {row['number']}: {len(e.clusters)} failure clusters: {names}",
    )


@handles(Iteration.Completed)
def _iteration_completed(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    results = iteration_results(db, row)
    db.execute(
        "UPDATE v_iterations SET status = ?, completed_at = ?, results = ? WHERE stream = ?",
        (e.status, _time(e), _json(results), row["stream"]),
    )
    _iteration_audit(db, e, position, row, f"iteration {row['number']} {e.status}")


def iteration_results(db: Connection, iteration: Row) -> dict[str, Any]:
    """Computed once, when the iteration completes, from the run rows and the frozen config."""
    frozen = json.loads(iteration["config"]) if iteration["config"] else None
    config = SignalConfig.model_validate(frozen["parsed"]) if frozen else None
    rows = [
        RunRow(
            run_id=r["id"],
            task_id=r["task_id"],
            environment_id=r["environment_id"],
            status=r["status"],
            stats=json.loads(r["stats"] or "{}"),
            signal_values=json.loads(r["signal_values"] or "{}"),
        )
        for r in db.execute(
            "SELECT id, task_id, environment_id, status, stats, signal_values FROM v_runs"
            " WHERE experiment_id = ? AND number = ? ORDER BY seq",
            (iteration["experiment_id"], iteration["number"]),
        )
    ]
    tasks = json.loads(iteration["tasks"])
    environments = json.loads(iteration["environments"])
    results = summarize(
        rows,
        {tid: d["name"] for tid, d in tasks.items()},
        {eid: d["name"] for eid, d in environments.items()},
        config,
    )
    clusters = json.loads(iteration["clusters"]) if iteration["clusters"] else {}
    results["failure_clusters"] = clusters.get("failure_clusters", [])
    results["suggestions"] = clusters.get("suggestions", [])
    return results


# -- runs -------------------------------------------------------------------------------------
# Run events are most of the log. Rather than a statement or two per event, a batch folds the
# changes of every run touched into one row update per run, written with `executemany` (with
# the audit rows) before any other event is applied and at the end of each catch-up batch.
#
# Live messages (`Run.MessagesRecorded`, for `run logs --follow`) are kept for the current
# attempt only: a new attempt starts its log afresh, and a completed run's stored transcript
# supersedes them, so the table holds little more than the runs in flight. A cancelled run has
# no transcript: its live messages are what remains of it, and stay. They are not history:
# the audit trail leaves them out (one row per message batch would drown it).

RUN_EVENTS = (
    Run.Opened,
    Run.Started,
    Run.MessagesRecorded,
    Run.Completed,
    Run.SignalsExtracted,
    Run.Cancelled,
)


def _run_change(e: Any) -> tuple[dict[str, Any], str]:
    """The columns a run event sets, and its audit summary after `run <id>`."""
    if isinstance(e, Run.Started):
        columns = {"status": "running", "attempts": e.attempt, "started_at": _time(e)}
        return columns, f" started (attempt {e.attempt})"
    if isinstance(e, Run.Completed):
        reason = f" ({e.termination_reason})" if e.termination_reason else ""
        error = f": {e.error}" if e.error else ""
        columns = {
            "status": e.status,
            "termination_reason": e.termination_reason,
            "stats": _json(e.stats),
            "error": e.error,
            "transcript_ref": e.transcript_ref,
            "ended_at": _time(e),
        }
        return columns, f" {e.status}{reason}{error}"
    if isinstance(e, Run.SignalsExtracted):
        # The values alone, too: results read them for every run, evidence only for one.
        values = {sid: item.get("value") for sid, item in e.values.items()}
        failed = sum(1 for v in e.values.values() if v.get("error"))
        note = f", {failed} failed" if failed else ""
        columns = {"signals": _json(e.values), "signal_values": _json(values)}
        return columns, f": {len(e.values)} signals extracted{note}"
    assert isinstance(e, Run.Cancelled)
    columns = {"status": "cancelled", "termination_reason": "cancelled", "ended_at": _time(e)}
    return columns, " cancelled"


LIVE_CLEAR_CHUNK = 500


class RunEventBatch:
    """Run events folded per run, waiting to be written in a few statements."""

    def __init__(self) -> None:
        self._opened: list[tuple[str, str]] = []
        self._changes: dict[str, dict[str, Any]] = {}
        self._audit: list[tuple[Any, ...]] = []
        # Live messages: runs whose stored ones go, then rows to write, per run stream.
        self._live_cleared: set[str] = set()
        self._live: dict[str, list[tuple[int, int, str]]] = {}

    def add(self, e: Any, position: int) -> None:
        stream = str(e.originator_id)
        if isinstance(e, Run.Opened):
            self._opened.append((stream, e.run_id))
            return
        if isinstance(e, Run.MessagesRecorded):
            rows = self._live.setdefault(stream, [])
            rows.extend(
                (e.attempt, e.first + offset, _json(message))
                for offset, message in enumerate(e.messages)
            )
            return
        if (isinstance(e, Run.Started) and e.attempt > 1) or (
            isinstance(e, Run.Completed) and e.transcript_ref is not None
        ):
            self._live_cleared.add(stream)
            self._live.pop(stream, None)
        columns, summary = _run_change(e)
        self._changes.setdefault(stream, {}).update(columns)
        self._audit.append(
            (
                position,
                e.originator_version,
                _time(e),
                type(e).TOPIC.removeprefix("tpc:"),
                summary,
                stream,
            )
        )

    def flush(self, db: Connection) -> None:
        if self._opened:
            db.executemany("UPDATE v_runs SET stream = ? WHERE id = ?", self._opened)
        by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for stream, columns in self._changes.items():
            names = tuple(sorted(columns))
            by_columns.setdefault(names, []).append((*(columns[n] for n in names), stream))
        for names, rows in by_columns.items():
            assignments = ", ".join(f"{name} = ?" for name in names)
            db.executemany(f"UPDATE v_runs SET {assignments} WHERE stream = ?", rows)
        if self._audit:
            db.executemany(
                "INSERT INTO v_audit SELECT ?, product_id, experiment_id, 'run', id, ?, ?, ?,"
                " 'run ' || id || ? FROM v_runs WHERE stream = ?",
                self._audit,
            )
        self._flush_live(db)
        self._opened.clear()
        self._changes.clear()
        self._audit.clear()

    def _flush_live(self, db: Connection) -> None:
        streams = sorted(self._live_cleared)
        # One statement per chunk, not per run: most runs completing here had no live rows.
        for start in range(0, len(streams), LIVE_CLEAR_CHUNK):
            chunk = streams[start : start + LIVE_CLEAR_CHUNK]
            db.execute(
                "DELETE FROM v_live_messages WHERE run_id IN (SELECT id FROM v_runs"
                f" WHERE stream IN ({', '.join('?' * len(chunk))}))",
                chunk,
            )
        rows = [(*row, stream) for stream, items in self._live.items() for row in items]
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
        self._live.clear()
