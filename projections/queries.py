"""Reads of the views, shaped as the API returns them (docs/api.md). Lookups only: nothing
here recomputes from transcripts; results were computed once when the iteration completed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any, NamedTuple

from domain.comparisons import compare_environments, compare_iterations
from domain.errors import Conflict, NotFound
from domain.results import public_aggregate, public_summary
from domain.runs import TERMINAL_STATUSES
from domain.statistics import DEFAULT_CONFIDENCE
from domain.vocabulary import ACTIVE, RUN_STATES
from infra.store.database import Database, Guard, Row
from projections.read_models import (
    AuditEvent,
    EnvironmentView,
    ExperimentView,
    IterationStatus,
    Page,
    Results,
    RunCounts,
    RunLog,
    RunRow,
    TaskView,
)
from projections.view_values import parse_json

MAX_LIMIT = 500
# Ids looked up per query when checking that a product has them (well under SQLite's limit
# on a statement's parameters).
IDS_PER_QUERY = 500
RUNNING_ITERATIONS_SQL = (
    "SELECT COUNT(*) FROM v_iterations WHERE product_id = ? AND status = 'running'"
)
DEFINITION_COLUMNS = "id, definition, created_at"
# Results answers kept (`_results_answer`): each holds its stored text, ≈ 25 kB at 20 runs.
RESULTS_REMEMBERED = 64
# Experiment answers kept (`_experiment_answer`): only those whose signal config is at most
# REMEMBERED_ANSWER_CONFIG_CHARS long (a few kB is usual; a product may store up to 1 MB), so
# that they hold a few MB in all, whatever products store.
EXPERIMENTS_REMEMBERED = 512
REMEMBERED_ANSWER_CONFIG_CHARS = 8 * 1024


PRODUCT_COLUMNS = (
    "p.id, p.name, p.created_at, (SELECT COUNT(*) FROM v_tokens t"
    " WHERE t.product_id = p.id AND t.revoked_at IS NULL) AS active_tokens"
)


def _product_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": row["created_at"],
        "active_tokens": int(row["active_tokens"]),
    }


def _definition_json(row: Row) -> dict[str, Any]:
    return {"id": row["id"], **parse_json(row["definition"]), "created_at": row["created_at"]}


def _token_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "product_id": row["product_id"],
        "name": row["name"],
        "hint": row["hint"] or None,
        "key_id": row["key_id"],
        "created_at": row["created_at"],
        "revoked": row["revoked_at"] is not None,
        "revoked_at": row["revoked_at"],
    }


def _token_owner_sql(hashes: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in hashes)
    return (
        f"SELECT product_id, id FROM v_tokens WHERE token_hash IN ({marks}) AND revoked_at IS NULL"
    )


def _loads(text: str | None) -> Any:
    return parse_json(text) if text else None


class Views:
    """Read access to the projections (each read is one query on the store's database)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def _page(
        self, sql: str, params: tuple[Any, ...], limit: int, cursor: str | None
    ) -> tuple[list[Row], str | None]:
        limit = max(1, min(limit, MAX_LIMIT))
        after = int(cursor) if cursor and cursor.isdigit() else -1
        rows = self._database.read(
            f"{sql} AND seq > ? ORDER BY seq LIMIT ?", (*params, after, limit + 1)
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (str(rows[-1]["seq"]) if more else None)

    # -- products ---------------------------------------------------------------------------

    def product_for_token_hash(self, token_hash: str) -> str | None:
        owner = self.token_owner((token_hash,))
        return owner[0] if owner else None

    def token_owner(self, hashes: tuple[str, ...]) -> tuple[str, str] | None:
        """(product id, token id) of the live token stored under one of `hashes`."""
        row: Row | None = self._database.read_one(_token_owner_sql(hashes), hashes)
        return (str(row["product_id"]), str(row["id"])) if row else None

    def owner_guard(self, hashes: tuple[str, ...], product_id: str) -> Guard:
        """Holds when the live token stored under one of `hashes` acts for `product_id`."""

        def holds(rows: Sequence[Row]) -> bool:
            return bool(rows) and rows[0]["product_id"] == product_id

        return Guard(_token_owner_sql(hashes), hashes, holds)

    def guarded(self, guard: Guard) -> AbstractContextManager[None]:
        return self._database.guarded(guard)

    def has_product(self, product_id: str) -> bool:
        row = self._database.read_one("SELECT 1 FROM v_products WHERE id = ?", (product_id,))
        return row is not None

    def has_products(self) -> bool:
        return self._database.read_one("SELECT 1 FROM v_products LIMIT 1") is not None

    def product(self, product_id: str) -> dict[str, Any]:
        row = self._database.read_one(
            f"SELECT {PRODUCT_COLUMNS} FROM v_products p WHERE p.id = ?", (product_id,)
        )
        if row is None:
            raise NotFound(f"product {product_id} not found")
        return _product_json(row)

    def products(self) -> list[dict[str, Any]]:
        rows = self._database.read(f"SELECT {PRODUCT_COLUMNS} FROM v_products p ORDER BY p.seq")
        return [_product_json(row) for row in rows]

    def tokens(self, product_id: str) -> list[dict[str, Any]]:
        """A product's tokens, oldest first: never the token, only its last four characters."""
        self.product(product_id)
        rows = self._database.read(
            "SELECT * FROM v_tokens WHERE product_id = ? ORDER BY seq", (product_id,)
        )
        return [_token_json(row) for row in rows]

    def live_tokens_under_other_keys(self, key_id: str) -> int:
        row = self._database.read_one(
            "SELECT COUNT(*) FROM v_tokens"
            " WHERE revoked_at IS NULL AND key_id <> '' AND key_id <> ?",
            (key_id,),
        )
        return int(row[0]) if row else 0

    def token(self, token_id: str) -> dict[str, Any]:
        row = self._database.read_one("SELECT * FROM v_tokens WHERE id = ?", (token_id,))
        if row is None:
            raise NotFound(f"token {token_id} not found")
        return _token_json(row)

    # -- tasks and environments -------------------------------------------------------------

    def _definition(self, table: str, product: str, public_id: str, what: str) -> dict[str, Any]:
        row: Row | None = self._database.read_one(
            f"SELECT * FROM {table} WHERE id = ? AND product_id = ?", (public_id, product)
        )
        if row is None:
            raise NotFound(f"{what} {public_id} not found")
        return _definition_json(row)

    def definitions_found(
        self, product: str, task_ids: Iterable[str], env_ids: Iterable[str]
    ) -> tuple[set[str], set[str]]:
        """Which of these task and environment ids the product has, as an experiment's
        creation checks them."""
        rows = self._definition_rows(product, task_ids, env_ids, "id")
        return (
            {r["id"] for r in rows if r["kind"] == "v_tasks"},
            {r["id"] for r in rows if r["kind"] == "v_environments"},
        )

    def running_iterations_and_definitions(
        self, product: str, task_ids: Iterable[str], env_ids: Iterable[str]
    ) -> tuple[int, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """What a trigger or an import reads, in one message on PostgreSQL: how many of the
        product's iterations are running, and the tasks and environments as stored (each
        definition with its id and time), in the order asked, as an iteration freezes them;
        `NotFound` names the first missing."""
        task_ids, env_ids = list(dict.fromkeys(task_ids)), list(dict.fromkeys(env_ids))
        queries = self._definition_queries(product, task_ids, env_ids, DEFINITION_COLUMNS)
        running, *answers = self._database.read_together(
            [(RUNNING_ITERATIONS_SQL, (product,)), *queries]
        )
        rows = [row for answer in answers for row in answer]
        found: dict[str, dict[str, dict[str, Any]]] = {"v_tasks": {}, "v_environments": {}}
        for row in rows:
            found[row["kind"]][row["id"]] = _definition_json(row)
        wanted = (("task", "v_tasks", task_ids), ("environment", "v_environments", env_ids))
        for what, table, ids in wanted:
            for unknown in (i for i in ids if i not in found[table]):
                raise NotFound(f"{what} {unknown} not found")
        tasks, environments = found["v_tasks"], found["v_environments"]
        return (
            int(running[0][0]),
            {i: tasks[i] for i in task_ids},
            {i: environments[i] for i in env_ids},
        )

    def _definition_rows(
        self, product: str, task_ids: Iterable[str], env_ids: Iterable[str], columns: str
    ) -> list[Row]:
        queries = self._definition_queries(product, task_ids, env_ids, columns)
        return [row for answer in self._database.read_together(queries) for row in answer]

    @staticmethod
    def _definition_queries(
        product: str, task_ids: Iterable[str], env_ids: Iterable[str], columns: str
    ) -> list[tuple[str, list[str]]]:
        """The queries of the product's rows among these ids, each row with its `kind` (the
        table): one query for both kinds (per IDS_PER_QUERY ids) rather than one per id."""
        wanted = [("v_tasks", i) for i in dict.fromkeys(task_ids)]
        wanted += [("v_environments", i) for i in dict.fromkeys(env_ids)]
        queries: list[tuple[str, list[str]]] = []
        for start in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[start : start + IDS_PER_QUERY]
            selects: list[str] = []
            parameters: list[str] = []
            for table in ("v_tasks", "v_environments"):
                ids = [i for t, i in chunk if t == table]
                if ids:
                    selects.append(
                        f"SELECT '{table}' AS kind, {columns} FROM {table}"
                        f" WHERE product_id = ? AND id IN ({', '.join('?' * len(ids))})"
                    )
                    parameters += [product, *ids]
            queries.append((" UNION ALL ".join(selects), parameters))
        return queries

    def task_definition(self, product: str, task_id: str) -> dict[str, Any]:
        """The task as stored (its definition with id and time), as iterations freeze it."""
        return self._definition("v_tasks", product, task_id, "task")

    def task(self, product: str, task_id: str) -> TaskView:
        return TaskView.model_validate(self.task_definition(product, task_id))

    def environment(self, product: str, env_id: str) -> EnvironmentView:
        return EnvironmentView.model_validate(
            summarize_environment(
                self._definition("v_environments", product, env_id, "environment")
            )
        )

    def environment_definition(self, product: str, env_id: str) -> dict[str, Any]:
        return self._definition("v_environments", product, env_id, "environment")

    def _list_definitions(
        self, table: str, product: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows, next_cursor = self._page(
            f"SELECT * FROM {table} WHERE product_id = ?", (product,), limit, cursor
        )
        items = [
            {"id": r["id"], **parse_json(r["definition"]), "created_at": r["created_at"]}
            for r in rows
        ]
        return items, next_cursor

    def tasks(self, product: str, limit: int = 50, cursor: str | None = None) -> Page[TaskView]:
        items, next_cursor = self._list_definitions("v_tasks", product, limit, cursor)
        return Page[TaskView](
            items=[TaskView.model_validate(item) for item in items], next_cursor=next_cursor
        )

    def environments(
        self, product: str, limit: int = 50, cursor: str | None = None
    ) -> Page[EnvironmentView]:
        items, next_cursor = self._list_definitions("v_environments", product, limit, cursor)
        return Page[EnvironmentView](
            items=[EnvironmentView.model_validate(summarize_environment(i)) for i in items],
            next_cursor=next_cursor,
        )

    # -- experiments ------------------------------------------------------------------------

    def experiment(self, product: str, exp_id: str) -> ExperimentView:
        row: Row | None = self._database.read_one(
            "SELECT * FROM v_experiments WHERE id = ? AND product_id = ?", (exp_id, product)
        )
        if row is None:
            raise NotFound(f"experiment {exp_id} not found")
        return _experiment_json(row)

    def experiments(
        self, product: str, limit: int = 50, cursor: str | None = None
    ) -> Page[ExperimentView]:
        rows, next_cursor = self._page(
            "SELECT * FROM v_experiments WHERE product_id = ?", (product,), limit, cursor
        )
        return Page[ExperimentView](
            items=[_experiment_json(r) for r in rows], next_cursor=next_cursor
        )

    def history(
        self, product: str, exp_id: str, limit: int = 500, cursor: str | None = None
    ) -> Page[AuditEvent]:
        self.experiment(product, exp_id)
        limit = max(1, min(limit, MAX_LIMIT))
        after = int(cursor) if cursor and cursor.isdigit() else 0
        rows = self._database.read(
            "SELECT * FROM v_audit WHERE experiment_id = ? AND position > ?"
            " ORDER BY position LIMIT ?",
            (exp_id, after, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page[AuditEvent](
            items=[
                AuditEvent(
                    position=r["position"],
                    time=r["time"],
                    type=r["type"],
                    summary=r["summary"],
                    stream=r["stream"],
                    id=r["id"],
                )
                for r in rows
            ],
            next_cursor=str(rows[-1]["position"]) if more else None,
        )

    def experiment_version_at(self, product: str, exp_id: str, position: int) -> int:
        """The experiment stream's version as it stood at a log position."""
        self.experiment(product, exp_id)
        row: Row | None = self._database.read_one(
            "SELECT MAX(version) AS version FROM v_audit WHERE experiment_id = ? AND"
            " stream = 'experiment' AND position <= ?",
            (exp_id, position),
        )
        if row is None or row["version"] is None:
            raise NotFound(f"experiment {exp_id} did not exist at position {position}")
        return int(row["version"])

    # -- iterations -------------------------------------------------------------------------

    def _iteration_row(self, product: str, exp_id: str, number: int | str) -> Row:
        """The product's iteration (`latest`: the experiment's last one) in one query; when
        there is none, the experiment is read to say why."""
        row: Row | None
        if number == "latest":
            row = self._database.read_one(
                "SELECT i.* FROM v_experiments e JOIN v_iterations i"
                " ON i.experiment_id = e.id AND i.number = e.iterations"
                " WHERE e.id = ? AND e.product_id = ?",
                (exp_id, product),
            )
        else:
            row = self._database.read_one(
                "SELECT * FROM v_iterations WHERE experiment_id = ? AND number = ?"
                " AND product_id = ?",
                (exp_id, int(number), product),
            )
        if row is not None:
            return row
        experiment = self.experiment(product, exp_id)
        if number == "latest":
            if not experiment.iterations:
                raise NotFound(f"{exp_id} has no iterations yet: run `tpc sim experiment run`")
            number = experiment.iterations
        raise NotFound(f"{exp_id} has no iteration {number}")

    def iteration_status(self, product: str, exp_id: str, number: int | str) -> IterationStatus:
        row = self._iteration_row(product, exp_id, number)
        counts = self._database.read(
            "SELECT number, status, COUNT(*) FROM v_runs WHERE experiment_id = ? AND number = ?"
            " GROUP BY number, status",
            (exp_id, row["number"]),
        )
        return _status_json(row, counts)

    def iterations(self, product: str, exp_id: str) -> Page[IterationStatus]:
        self.experiment(product, exp_id)
        rows = self._database.read(
            "SELECT * FROM v_iterations WHERE experiment_id = ? ORDER BY number", (exp_id,)
        )
        # Every iteration's run counts in one query, not one per iteration.
        counts = self._database.read(
            "SELECT number, status, COUNT(*) FROM v_runs WHERE experiment_id = ?"
            " GROUP BY number, status",
            (exp_id,),
        )
        return Page[IterationStatus](
            items=[_status_json(r, counts) for r in rows], next_cursor=None
        )

    def _completed_results_text(self, row: Row) -> str:
        if row["results"] is None:
            raise Conflict(
                f"{row['experiment_id']} iteration {row['number']} is still running: "
                "results are generated when every run is done (watch it with "
                "`tpc sim experiment run status --watch`)"
            )
        return str(row["results"])

    def _completed_results(self, row: Row) -> dict[str, Any]:
        results: dict[str, Any] = parse_json(self._completed_results_text(row))
        return results

    def results(
        self,
        product: str,
        exp_id: str,
        number: int | str,
        compare_with: int | None = None,
        error_category: str | None = None,
        confidence: float = DEFAULT_CONFIDENCE,
        baseline: str | None = None,
    ) -> Results:
        """The stored results at a confidence (one of domain.statistics.CONFIDENCES), each
        environment compared with `baseline` (an id or exact name; default: the best)."""
        row = self._iteration_row(product, exp_id, number)
        stored = StoredResults(
            row["experiment_id"],
            row["number"],
            row["status"],
            row["config_hash"],
            row["rescore_of"],
            row["imported"],
            self._completed_results_text(row),
        )
        answer = _results_answer(stored, error_category, confidence, baseline)
        if compare_with is None:
            return answer
        if compare_with == row["number"]:
            raise Conflict("compare with an earlier iteration, not the same one")
        previous = self._completed_results(self._iteration_row(product, exp_id, compare_with))
        compared = compare_iterations(
            parse_json(stored.results), previous, compare_with, confidence
        )
        return answer.model_copy(update={"compare": compared})

    def signals(
        self,
        product: str,
        exp_id: str,
        number: int | str,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> dict[str, Any]:
        row = self._iteration_row(product, exp_id, number)
        runs = [
            {
                "run_id": r["id"],
                "task_id": r["task_id"],
                "environment_id": r["environment_id"],
                "status": r["status"],
                "signals": _loads(r["signals"]) or {},
            }
            for r in self._database.read(
                "SELECT id, task_id, environment_id, status, signals FROM v_runs"
                " WHERE experiment_id = ? AND number = ? ORDER BY seq",
                (exp_id, row["number"]),
            )
        ]
        return {
            "experiment_id": exp_id,
            "iteration": row["number"],
            "config_hash": row["config_hash"],
            "confidence": confidence,
            "aggregates": self._aggregates(row, confidence),
            "runs": runs,
        }

    def aggregates(
        self, product: str, exp_id: str, number: int | str, confidence: float = DEFAULT_CONFIDENCE
    ) -> list[dict[str, Any]]:
        """An iteration's signal aggregates, overall and per group with their intervals: the
        signals report without its runs (a lookup however many runs it has)."""
        return self._aggregates(self._iteration_row(product, exp_id, number), confidence)

    def _aggregates(self, row: Row, confidence: float) -> list[dict[str, Any]]:
        stored = self._completed_results(row)
        return [public_aggregate(a, confidence) for a in stored["aggregates"]]

    # -- runs -------------------------------------------------------------------------------

    def runs(
        self,
        product: str,
        exp_id: str,
        number: int | str,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[RunRow]:
        row = self._iteration_row(product, exp_id, number)
        sql = "SELECT * FROM v_runs WHERE experiment_id = ? AND number = ?"
        params: tuple[Any, ...] = (exp_id, row["number"])
        if status:
            sql += " AND status = ?"
            params = (*params, status)
        rows, next_cursor = self._page(sql, params, limit, cursor)
        sources = _loads(row["import_sources"]) or {}
        return Page[RunRow](
            items=[_run_json(r, sources.get(r["id"])) for r in rows], next_cursor=next_cursor
        )

    def run(self, product: str, run_id: str) -> RunRow:
        row = self._run_row(product, run_id)
        found = self._database.read_one(
            "SELECT import_sources FROM v_iterations WHERE experiment_id = ? AND number = ?",
            (row["experiment_id"], row["number"]),
        )
        sources = _loads(found["import_sources"]) if found else None
        source = sources.get(run_id) if sources else None
        return _run_json(row, source)

    def _run_row(self, product: str, run_id: str) -> Row:
        row: Row | None = self._database.read_one(
            "SELECT * FROM v_runs WHERE id = ? AND product_id = ?", (run_id, product)
        )
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return row

    def transcript_ref(self, product: str, run_id: str) -> str:
        row = self._run_row(product, run_id)
        if row["transcript_ref"] is None:
            hint = (
                f": follow it live with `tpc sim run logs {run_id} --follow`"
                if row["status"] in ACTIVE
                else ""
            )
            raise Conflict(f"run {run_id} is {row['status']} and has no transcript yet{hint}")
        return str(row["transcript_ref"])

    @staticmethod
    def log_limit(limit: int | None) -> int:
        """How many messages one `live_log` answer may hold."""
        return MAX_LIMIT if limit is None else max(1, min(limit, MAX_LIMIT))

    def live_log(self, product: str, run_id: str, after: int, limit: int) -> RunLog:
        """The run's state and up to `limit` live messages of its current attempt from index
        `after` on, each `{"index", …message}`, with `next` and `done` as `TranscriptReads.run_logs`
        gives them. `transcript_ref` is set once the run has its transcript, whose messages
        then supersede the live ones (the caller reads them)."""
        row = self._run_row(product, run_id)
        # Only the attempt the row names: a newer one may have begun since the row was read.
        rows = self._database.read(
            "SELECT idx, message FROM v_live_messages WHERE run_id = ? AND attempt = ?"
            " AND idx >= ? ORDER BY idx LIMIT ?",
            (run_id, row["attempts"], after, limit + 1),
        )
        messages = [{"index": r["idx"], **parse_json(r["message"])} for r in rows[:limit]]
        return RunLog(
            run_id=run_id,
            status=row["status"],
            attempt=row["attempts"],
            messages=messages,
            next=messages[-1]["index"] + 1 if messages else after,
            # Without a transcript (a cancelled run), the live messages are all there is.
            done=row["status"] in TERMINAL_STATUSES and len(rows) <= limit,
            transcript_ref=row["transcript_ref"],
        )

    # -- for the executor -------------------------------------------------------------------

    def open_iterations(self) -> list[Row]:
        return self._database.read(
            "SELECT * FROM v_iterations WHERE status = 'running' ORDER BY created_at"
        )

    def cancel_requested(self, exp_id: str, number: int) -> bool:
        """Whether a cancel of the iteration was requested (False for an unknown one)."""
        row = self._database.read_one(
            "SELECT cancel_requested FROM v_iterations WHERE experiment_id = ? AND number = ?",
            (exp_id, number),
        )
        return bool(row and row[0])

    def count_unfinished_runs(self, exp_id: str, number: int) -> int:
        (row,) = self._database.read(
            "SELECT COUNT(*) FROM v_runs WHERE experiment_id = ? AND number = ?"
            " AND status IN ('queued', 'running')",
            (exp_id, number),
        )
        return int(row[0])

    def count_running_iterations(self, product: str) -> int:
        (row,) = self._database.read(RUNNING_ITERATIONS_SQL, (product,))
        return int(row[0])

    def failing_runs(self, exp_id: str, number: int) -> list[Row]:
        return self._database.read(
            "SELECT * FROM v_runs WHERE experiment_id = ? AND number = ?"
            " AND status IN ('failed', 'errored', 'timed_out') ORDER BY seq",
            (exp_id, number),
        )

    def unfinished_runs(self, exp_id: str, number: int) -> list[Row]:
        return self._database.read(
            "SELECT * FROM v_runs WHERE experiment_id = ? AND number = ?"
            " AND status IN ('queued', 'running') ORDER BY seq",
            (exp_id, number),
        )


class StoredResults(NamedTuple):
    """An iteration's stored results with the row's fields its answer shows."""

    experiment_id: str
    number: int
    status: str
    config_hash: str | None
    rescore_of: int | None
    imported: str | None
    results: str


# Results never change once stored, and each answer of them is a pure function of the text
# and the query: the last ones given are kept, parsed and shaped (on a results read this had
# been most of the server's time under load, the parse alone 0.1 ms for 25 kB).
@lru_cache(maxsize=RESULTS_REMEMBERED)
def _results_answer(
    stored: StoredResults, error_category: str | None, confidence: float, baseline: str | None
) -> Results:
    results = parse_json(stored.results)
    summary = public_summary(results["summary"], confidence)
    compare_environments(
        results["summary"]["environments"], summary["environments"], baseline, confidence
    )
    clusters: list[dict[str, Any]] = results.get("failure_clusters", [])
    if error_category is not None:
        # By name (any case) or by cause key (`auth`, `tool_error:TypeError`).
        wanted = error_category.strip().casefold()
        chosen = [
            c
            for c in clusters
            if wanted in (c["category"].casefold(), str(c.get("key", "")).casefold())
        ]
        if not chosen:
            known = ", ".join(c["category"] for c in clusters) or "none"
            raise NotFound(f"no failure cluster named {error_category!r} (clusters: {known})")
        clusters = chosen
    return Results(
        experiment_id=stored.experiment_id,
        iteration=stored.number,
        status=stored.status,
        config_hash=stored.config_hash,
        rescore_of=stored.rescore_of,
        imported=_loads(stored.imported),
        confidence=confidence,
        summary=summary,
        failure_clusters=clusters,
        suggestions=results.get("suggestions", []),
    )


class ExperimentRow(NamedTuple):
    """The fields of an experiment's view row that its answer shows."""

    id: str
    name: str
    task_ids: str
    env_ids: str
    repeats: int
    config_hash: str | None
    config_text: str | None
    iterations: int
    created_at: str
    version: int


def _experiment_json(row: Row) -> ExperimentView:
    fields = ExperimentRow(*(row[field] for field in ExperimentRow._fields))
    if len(fields.config_text or "") > REMEMBERED_ANSWER_CONFIG_CHARS:
        return _experiment_answer.__wrapped__(fields)
    return _experiment_answer(fields)


@lru_cache(maxsize=EXPERIMENTS_REMEMBERED)
def _experiment_answer(row: ExperimentRow) -> ExperimentView:
    """Remembered by the row's fields themselves: the same row always gets the same answer,
    and a list shows the same experiments again and again."""
    return ExperimentView.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "task_ids": parse_json(row.task_ids),
            "env_ids": parse_json(row.env_ids),
            "repeats": row.repeats,
            "signal_config": (
                {"hash": row.config_hash, "text": row.config_text} if row.config_hash else None
            ),
            "iterations": row.iterations,
            "created_at": row.created_at,
            "version": row.version,
        }
    )


def _status_json(row: Row, counts: list[Row]) -> IterationStatus:
    """An iteration's row with its runs counted by state (`counts`: number, status, count; the
    rows of other iterations are passed over)."""
    by_state = dict.fromkeys(RUN_STATES, 0)
    for number, status, count in counts:
        if number == row["number"]:
            by_state[status] = count
    return IterationStatus(
        experiment_id=row["experiment_id"],
        iteration=row["number"],
        status=row["status"],
        runs=RunCounts(total=row["total"], **by_state),
        config_hash=row["config_hash"],
        cancel_requested=bool(row["cancel_requested"]),
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        rescore_of=row["rescore_of"],
        imported=_loads(row["imported"]),
    )


def _run_json(row: Row, source: dict[str, Any] | None = None) -> RunRow:
    """A run; `source` (where an imported run's transcript was read) only when it has one."""
    return RunRow.model_validate(
        {
            "id": row["id"],
            "experiment_id": row["experiment_id"],
            "iteration": row["number"],
            "task_id": row["task_id"],
            "environment_id": row["environment_id"],
            "repeat": row["repeat"],
            "status": row["status"],
            "termination_reason": row["termination_reason"],
            "attempts": row["attempts"],
            "stats": _loads(row["stats"]),
            "error": row["error"],
            "signals": _loads(row["signals"]) or {},
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            **({"source": source} if source is not None else {}),
        }
    )


def summarize_environment(environment: dict[str, Any]) -> dict[str, Any]:
    """A replay environment lists how many transcripts each key has, not the references."""
    agent = environment.get("agent", {})
    if agent.get("kind") == "replay":
        counts = {key: len(refs) for key, refs in agent.get("transcripts", {}).items()}
        environment = {**environment, "agent": {**agent, "transcripts": counts}}
    return environment
