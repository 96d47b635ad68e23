"""The read models: SQL tables kept up to date from the event log, one handler per event type.

Every view row is written in the same transaction as the tracking position (`follower.py`), so
a crash never applies an event twice or skips one. Handlers only use the event and the views
themselves, so replaying the log from zero rebuilds identical tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from domain.catalog import LEGACY_TOKEN_NAME, Environment, Product, Task, legacy_token_id
from domain.experiments import Experiment
from domain.iterations import Iteration
from domain.results import RunRow, summarize
from domain.signals.config import SignalConfig
from infra.store.database import Connection, Database, Row
from projections.event_log import EventRow
from projections.run_rows import AUDIT_COLUMNS, RUN_EVENT_TYPES, RUN_EVENTS, RunEventBatch
from projections.view_values import event_time, json_text, parse_json

# One schema for both stores: `{serial}`, `{int}` are the port's type names (Database.ddl).
SCHEMA = """
CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position {int} NOT NULL);
CREATE TABLE IF NOT EXISTS v_products (
    seq {serial}, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS v_tokens (
    seq {serial}, id TEXT NOT NULL UNIQUE, product_id TEXT NOT NULL, name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL, key_id TEXT NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT);
CREATE INDEX IF NOT EXISTS v_tokens_by_product ON v_tokens (product_id, seq);
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
    completed_at TEXT, results TEXT, clusters TEXT, rescore_of {int}, imported TEXT,
    import_sources TEXT,
    PRIMARY KEY (experiment_id, number));
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
CREATE TABLE IF NOT EXISTS projection_failures (
    position {int} PRIMARY KEY, topic TEXT NOT NULL, error TEXT NOT NULL,
    recorded_at TEXT NOT NULL);
"""
# Events the views could not apply, skipped (`follower.py`): derived from the log like the
# views, so a rebuild empties it and records again what still fails; not a view itself (its
# times differ between a rebuild and the incremental build).
FAILURES_TABLE = "projection_failures"
VIEW_TABLES = (
    "v_products",
    "v_tokens",
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
    for table in (*VIEW_TABLES, FAILURES_TABLE):
        db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute("DELETE FROM tracking")


Handler = Callable[[Connection, Any, int], None]
# Handlers of events that touch the runs' rows or read them, given the waiting run events.
BatchHandler = Callable[[Connection, Any, int, RunEventBatch], None]
# The others never read `v_runs` nor `v_live_messages`: they may run while run events wait.
HANDLERS: dict[type, Handler] = {}
BATCH_HANDLERS: dict[type, BatchHandler] = {}


def handles(*kinds: type) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = handler
        return handler

    return register


def handles_with_runs(*kinds: type) -> Callable[[BatchHandler], BatchHandler]:
    def register(handler: BatchHandler) -> BatchHandler:
        for kind in kinds:
            BATCH_HANDLERS[kind] = handler
        return handler

    return register


# A row of `v_experiments` or `v_iterations` as `ViewRows` keeps it: by column name.
ViewRow = dict[str, Any]
# The column that names a row in its UPDATEs.
_ROW_KEYS = {"v_experiments": "id", "v_iterations": "stream"}
# The aggregates whose events after the first change a row `ViewRows` keeps, by the name that
# starts the event's topic ("tpc:Experiment.Renamed").
_ROW_TABLES = {"Experiment": "v_experiments", "Iteration": "v_iterations"}
# Streams read per query (well under SQLite's limit on a statement's parameters).
STREAMS_PER_QUERY = 500


def streams_with_rows(stored: Iterable[EventRow]) -> dict[str, set[str]]:
    """The experiment and iteration streams whose view rows these stored events (position,
    originator id, version, topic, state) change, by table: what `ViewRows.read` reads ahead.
    Only a guess from the topics: a stream it misses is read by `get` as before."""
    streams: dict[str, set[str]] = {table: set() for table in _ROW_KEYS}
    for _, originator_id, version, topic, _ in stored:
        table = _ROW_TABLES.get(topic.partition(":")[2].partition(".")[0])
        if table is not None and version > 1:  # the first event creates the row
            stream = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
            streams[table].add(str(stream))
    return streams


class ViewRows:
    """The `v_experiments` and `v_iterations` rows one batch of events reads and writes, by
    stream, and the batch's audit rows: written once, when the batch ends (`flush`).

    Each handler of an experiment's or an iteration's event needs its row (ids, lists it
    extends, the frozen config) and changes it. Statement by statement, that is a round trip
    per event to read it and a statement or two to write it, and on PostgreSQL it was most of
    a catch-up's time under the projector's lock (a creation is five events on one row). Kept
    here, a row is read at most once per batch, a row the batch inserts never, and each is
    written with one statement; no view's handler reads these tables but through here."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, ViewRow]] = {table: {} for table in _ROW_KEYS}
        # Rows this batch inserts, and the columns it changed of rows already written.
        self._new: dict[str, dict[str, ViewRow]] = {table: {} for table in _ROW_KEYS}
        self._changed: dict[str, dict[str, set[str]]] = {table: {} for table in _ROW_KEYS}
        self._audit: list[tuple[Any, ...]] = []

    def get(self, db: Connection, table: str, stream: str) -> ViewRow | None:
        rows = self._rows[table]
        row = rows.get(stream)
        if row is None:
            found: Row | None = db.execute(
                f"SELECT * FROM {table} WHERE stream = ?", (stream,)
            ).fetchone()
            if found is None:
                return None
            row = rows[stream] = dict(zip(found.keys(), found, strict=True))
        return row

    def read(self, db: Connection, streams: dict[str, set[str]]) -> None:
        """Read these streams' rows ahead, one query per table sent before either is waited
        for (on PostgreSQL, one round trip for both), where `get` would wait for one each
        under the projector's lock. A stream without a row yet is left to `get`."""
        pending = []
        for table, wanted in streams.items():
            missing = sorted(stream for stream in wanted if stream not in self._rows[table])
            for start in range(0, len(missing), STREAMS_PER_QUERY):
                chunk = missing[start : start + STREAMS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT * FROM {table} WHERE stream IN ({marks})"
                pending.append((table, db.execute(sql, chunk)))
        for table, cursor in pending:
            for found in cursor.fetchall():
                self._rows[table][found["stream"]] = dict(zip(found.keys(), found, strict=True))

    def insert(self, table: str, row: ViewRow) -> None:
        self._rows[table][row["stream"]] = self._new[table][row["stream"]] = row

    def update(self, table: str, row: ViewRow, values: dict[str, Any]) -> None:
        row.update(values)
        if row["stream"] not in self._new[table]:
            self._changed[table].setdefault(row["stream"], set()).update(values)

    def audit(self, row: tuple[Any, ...]) -> None:
        self._audit.append(row)

    def flush(self, db: Connection) -> None:
        for table, key in _ROW_KEYS.items():
            new = self._new[table]
            if new:
                columns = tuple(next(iter(new.values())))
                db.insert_rows(table, columns, [tuple(r[c] for c in columns) for r in new.values()])
            by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for stream, names in self._changed[table].items():
                row = self._rows[table][stream]
                ordered = tuple(sorted(names))
                by_columns.setdefault(ordered, []).append(
                    (*(row[name] for name in ordered), row[key])
                )
            for ordered, values in by_columns.items():
                assignments = ", ".join(f"{name} = ?" for name in ordered)
                db.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = ?", values)
            new.clear()
            self._changed[table].clear()
        if self._audit:
            db.insert_rows("v_audit", AUDIT_COLUMNS, self._audit)
            self._audit.clear()


# The rows of the batch being applied (`apply_events`), for the handlers of this thread.
_batch_rows: ContextVar[ViewRows | None] = ContextVar("tpc_view_rows", default=None)


def _view_rows() -> ViewRows:
    rows = _batch_rows.get()
    assert rows is not None, "a view's handler runs inside apply_events"
    return rows


def apply_events(
    db: Connection,
    events: Iterable[tuple[Any, int]],
    runs: RunEventBatch | None = None,
    streams: dict[str, set[str]] | None = None,
) -> None:
    """Fold events (with their log positions) into the views, in order; events no view needs
    are skipped. Run events wait in `runs` (flushed here unless the caller passes its own
    batch, which it then flushes). The experiments' and iterations' rows and the audit rows
    are written once for all the events (`ViewRows`), the rows of `streams` read first, at
    once (`streams_with_rows`)."""
    rows = ViewRows()
    if streams:
        rows.read(db, streams)
    token = _batch_rows.set(rows)
    try:
        batch = RunEventBatch() if runs is None else runs
        for event, position in events:
            kind = type(event)
            if kind in RUN_EVENT_TYPES or isinstance(event, RUN_EVENTS):
                batch.add(event, position)
                continue
            batch_handler = BATCH_HANDLERS.get(kind)
            if batch_handler is not None:
                batch_handler(db, event, position, batch)
                continue
            handler = HANDLERS.get(kind)
            if handler is not None:
                handler(db, event, position)
        rows.flush(db)
        if runs is None:
            batch.flush(db)
    finally:
        _batch_rows.reset(token)


def handled(kind: type) -> bool:
    """Whether any view needs events of this class (others need not even be decoded)."""
    return issubclass(kind, RUN_EVENTS) or kind in HANDLERS or kind in BATCH_HANDLERS


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
    _view_rows().audit(
        (
            position,
            product_id,
            experiment_id,
            stream,
            public_id,
            event.originator_version,
            event_time(event),
            type(event).TOPIC.removeprefix("tpc:"),
            summary,
        )
    )


# -- catalog ----------------------------------------------------------------------------------


@handles(Product.Registered)
def _product_registered(db: Connection, e: Any, _: int) -> None:
    db.execute(
        "INSERT INTO v_products (id, stream, name, created_at) VALUES (?, ?, ?, ?)",
        (e.public_id, str(e.originator_id), e.name, event_time(e)),
    )
    if e.token_hash:  # a product from before token events: its one token, plain SHA-256
        token_id = legacy_token_id(e.public_id)
        _insert_token(db, e, token_id, LEGACY_TOKEN_NAME, e.token_hash, "", "")


def _insert_token(
    db: Connection, e: Any, token_id: str, name: str, hash: str, hint: str, key_id: str
) -> None:
    db.execute(
        "INSERT INTO v_tokens (id, product_id, name, token_hash, hint, key_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token_id, _product_id(db, e), name, hash, hint, key_id, event_time(e)),
    )


def _product_id(db: Connection, e: Any) -> str:
    if isinstance(e, Product.Registered):
        return str(e.public_id)
    # Token events carry no product id: their stream names the product.
    row: Row | None = db.execute(
        "SELECT id FROM v_products WHERE stream = ?", (str(e.originator_id),)
    ).fetchone()
    assert row is not None, f"product stream {e.originator_id} has no view row"
    return str(row["id"])


@handles(Product.TokenIssued)
def _token_issued(db: Connection, e: Any, _: int) -> None:
    _insert_token(db, e, e.token_id, e.name, e.token_hash, e.hint, e.key_id)


@handles(Product.TokenRevoked)
def _token_revoked(db: Connection, e: Any, _: int) -> None:
    db.execute("UPDATE v_tokens SET revoked_at = ? WHERE id = ?", (event_time(e), e.token_id))


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
            json_text(e.definition),
            event_time(e),
            e.originator_version,
        ),
    )


# -- experiments ------------------------------------------------------------------------------


def _experiment(db: Connection, e: Any) -> ViewRow:
    row = _view_rows().get(db, "v_experiments", str(e.originator_id))
    assert row is not None, f"experiment stream {e.originator_id} has no view row"
    return row


def _update_experiment(db: Connection, row: ViewRow, values: dict[str, Any]) -> None:
    _view_rows().update("v_experiments", row, values)


@handles(Experiment.Created)
def _experiment_created(db: Connection, e: Any, position: int) -> None:
    row = {
        "id": e.public_id,
        "stream": str(e.originator_id),
        "product_id": e.product_id,
        "name": e.name,
        "task_ids": "[]",
        "env_ids": "[]",
        "repeats": e.repeats,
        "config_text": None,
        "config_hash": None,
        "iterations": 0,
        "created_at": event_time(e),
        "version": e.originator_version,
    }
    _view_rows().insert("v_experiments", row)
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
    column: str, summary: Callable[[Any], str], value: Callable[[Any, ViewRow], Any]
) -> Handler:
    def handler(db: Connection, e: Any, position: int) -> None:
        row = _experiment(db, e)
        _update_experiment(db, row, {column: value(e, row), "version": e.originator_version})
        _audit(db, e, position, row["id"], row["product_id"], "experiment", row["id"], summary(e))

    return handler


def _add(column: str, attr: str) -> Callable[[Any, ViewRow], str]:
    return lambda e, row: json_text([*json.loads(row[column]), getattr(e, attr)])


def _remove(column: str, attr: str) -> Callable[[Any, ViewRow], str]:
    return lambda e, row: json_text([x for x in json.loads(row[column]) if x != getattr(e, attr)])


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
    _update_experiment(
        db,
        row,
        {
            "config_text": e.text if is_set else None,
            "config_hash": e.config_hash if is_set else None,
            "version": e.originator_version,
        },
    )
    summary = f"signal config set ({e.config_hash})" if is_set else "signal config cleared"
    _audit(db, e, position, row["id"], row["product_id"], "experiment", row["id"], summary)


# -- iterations -------------------------------------------------------------------------------


@handles_with_runs(Iteration.ConfigFrozen)
def _iteration_frozen(db: Connection, e: Any, position: int, runs: RunEventBatch) -> None:
    config = e.signal_config
    row: ViewRow = {
        "experiment_id": e.experiment_id,
        "number": e.number,
        "stream": str(e.originator_id),
        "product_id": e.product_id,
        "status": "running",
        "total": len(e.runs),
        "cancel_requested": 0,
        "config": json_text(config) if config else None,
        "config_hash": config.hash if config else None,
        "tasks": json_text(e.tasks),
        "environments": json_text(e.environments),
        "created_at": event_time(e),
        "completed_at": None,
        "results": None,
        "clusters": None,
        "rescore_of": None,
        "imported": None,
        "import_sources": None,
    }
    _view_rows().insert("v_iterations", row)
    # The run rows wait with the run events, which usually follow: each row is then written
    # once, as it ends the batch, rather than inserted, then updated as its events come.
    runs.plan(
        e.product_id,
        e.experiment_id,
        e.number,
        e.runs,
        db,
    )
    hash_note = f", config {config.hash}" if config else ", no signal config"
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


def _iteration(db: Connection, e: Any) -> ViewRow:
    row = _view_rows().get(db, "v_iterations", str(e.originator_id))
    assert row is not None, f"iteration stream {e.originator_id} has no view row"
    return row


def _update_iteration(db: Connection, row: ViewRow, values: dict[str, Any]) -> None:
    _view_rows().update("v_iterations", row, values)


def _iteration_audit(db: Connection, e: Any, position: int, row: ViewRow, text: str) -> None:
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


@handles(Iteration.RescoreOf)
def _iteration_rescores(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    _update_iteration(db, row, {"rescore_of": e.source})
    _iteration_audit(
        db,
        e,
        position,
        row,
        f"iteration {row['number']} is a re-score of iteration {e.source}: its recorded "
        "transcripts, extracted and judged again, no agent runs",
    )


@handles(Iteration.Imported)
def _iteration_imported(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    files = len({file for _, file, _ in e.sources})
    imported = {"format": e.format, "runs": len(e.transcripts), "files": files}
    # Where each run's transcript was read, for the runs' answers (`Views.runs`).
    sources = {run_id: {"file": file, "sample": sample} for run_id, file, sample in e.sources}
    _update_iteration(
        db, row, {"imported": json_text(imported), "import_sources": json_text(sources)}
    )
    _iteration_audit(
        db,
        e,
        position,
        row,
        f"iteration {row['number']} is imported from {len(e.transcripts)} recorded transcripts "
        f"({e.format}, {files} files): no agent runs",
    )


@handles(Iteration.CancelRequested)
def _iteration_cancel_requested(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    _update_iteration(db, row, {"cancel_requested": 1})
    _iteration_audit(db, e, position, row, f"iteration {row['number']} cancel requested")


@handles(Iteration.ClustersRecorded)
def _iteration_clustered(db: Connection, e: Any, position: int) -> None:
    row = _iteration(db, e)
    clusters = {
        "failure_clusters": [cluster.to_json() for cluster in e.clusters],
        "suggestions": [item.to_json() for item in e.suggestions],
    }
    _update_iteration(db, row, {"clusters": json_text(clusters)})
    names = ", ".join(f"{c.category} ({c.size})" for c in e.clusters[:5]) or "none"
    _iteration_audit(
        db,
        e,
        position,
        row,
        f"iteration {row['number']}: {len(e.clusters)} failure clusters: {names}",
    )


@handles_with_runs(Iteration.Completed)
def _iteration_completed(db: Connection, e: Any, position: int, runs: RunEventBatch) -> None:
    row = _iteration(db, e)
    waiting = runs.iteration_rows(row["experiment_id"], row["number"])
    if waiting is None:
        runs.flush(db)
    else:
        runs.settle(row["experiment_id"], row["number"])
    results = iteration_results(db, row, waiting)
    _update_iteration(
        db,
        row,
        {"status": e.status, "completed_at": event_time(e), "results": json_text(results)},
    )
    _iteration_audit(db, e, position, row, f"iteration {row['number']} {e.status}")


def iteration_results(
    db: Connection, iteration: ViewRow, runs: Iterable[Sequence[Any]] | None = None
) -> dict[str, Any]:
    """Computed once, when the iteration completes, from the run rows and the frozen config.
    `runs`: its runs' (id, task_id, environment_id, status, stats, signal_values) in `seq`
    order when they are still in memory (the values the table would give); else they are
    read."""
    frozen = json.loads(iteration["config"]) if iteration["config"] else None
    config = SignalConfig.model_validate(frozen["parsed"]) if frozen else None
    if runs is None:
        runs = db.execute(
            "SELECT id, task_id, environment_id, status, stats, signal_values FROM v_runs"
            " WHERE experiment_id = ? AND number = ? ORDER BY seq",
            (iteration["experiment_id"], iteration["number"]),
        )
    rows = [
        RunRow(
            run_id=run_id,
            task_id=task_id,
            environment_id=environment_id,
            status=status,
            stats=parse_json(stats or "{}"),
            signal_values=parse_json(signal_values or "{}"),
        )
        for run_id, task_id, environment_id, status, stats, signal_values in runs
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
