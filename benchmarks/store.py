"""Event store throughput: appends, a projection rebuild, one end-to-end iteration, on SQLite
and on PostgreSQL.

    .venv/bin/python benchmarks/store.py           # 200,000-event rebuild, a 2,000-run iteration
    .venv/bin/python benchmarks/store.py --quick   # tiny sizes: a smoke run
    .venv/bin/python benchmarks/store.py --no-sqlite --postgres postgresql://postgres@db/postgres
    .venv/bin/python benchmarks/store.py --parts rebuild   # only the rebuild (both stores)

Each part runs on a SQLite file, then on a fresh PostgreSQL database the benchmark creates
(and drops) with the role `--postgres` names; PostgreSQL unreachable: its part is skipped.

1. Appends through `EventStore.save` (Run.Started / Run.Completed events with real stats),
   one event per save and ten per save, against raw inserts of the very same stored rows into
   a table of the same shape: `sqlite3` in WAL mode (one INSERT + COMMIT per row; executemany
   of ten rows per COMMIT), or psycopg (one autocommitted INSERT per row; executemany of ten
   rows per transaction). Ratio = store rate / raw rate (1.0 = no overhead at all).
2. `Projector.rebuild()` over a log of real experiments, iterations and runs (opened, started,
   completed, signals extracted, iterations completed), built through the domain aggregates
   and batched saves. Baseline: reading the same notifications and decoding them to domain
   events with the eventsourcing library's mapper, without writing any view. Ratio = rebuild
   rate / decode rate. Also shown: the projector's own (faster) read-and-decode path alone.
3. One iteration end to end: trigger, the in-process executor runs every run against a replay
   environment with examples/signals.yaml, the iteration completes; a log follower polls as in
   `tpc serve`. Wall time and ms per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from application.executor import Executor  # noqa: E402
from application.service import Service  # noqa: E402
from domain.definitions import EnvironmentDefinition, TaskDefinition  # noqa: E402
from domain.experiments import Experiment  # noqa: E402
from domain.ids import stream_id  # noqa: E402
from domain.iterations import FrozenSignalConfig, Iteration, plan_runs  # noqa: E402
from domain.runs import RecordedStats, Run  # noqa: E402
from domain.signals.extraction import Extractor, SignalValue  # noqa: E402
from domain.signals.validation import load_signal_config  # noqa: E402
from domain.stats import derive_stats  # noqa: E402
from domain.transcripts import parse_transcript  # noqa: E402
from infra.ids import new_id  # noqa: E402
from infra.llm.prices import MODEL_PRICES  # noqa: E402
from infra.runners.replay import ReplayRunner  # noqa: E402
from infra.runners.scripted import ScriptedRunner  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.store.blobs import content_ref  # noqa: E402
from infra.store.database import Database  # noqa: E402
from infra.store.events import EventStore  # noqa: E402
from infra.store.migrations import apply_migrations  # noqa: E402
from infra.store.opening import open_database  # noqa: E402
from projections.follower import BATCH, REBUILD_BATCH, Projector  # noqa: E402
from projections.read_models import document  # noqa: E402
from projections.views import handled  # noqa: E402

EXAMPLES = ROOT / "examples"
TASK_KINDS = ("install-sdk", "webhook", "refund")  # examples/transcripts/<kind>__<label>.json
LABELS = ("sonnet-docs", "gpt-nodocs")
RAW_TABLE = (
    "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT,"
    " state BLOB, PRIMARY KEY (originator_id, originator_version))"
)
RAW_INSERT = "INSERT INTO stored_events VALUES (?, ?, ?, ?)"
# The shape eventsourcing gives its PostgreSQL table (less its storage options).
PG_RAW_TABLE = (
    "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
    " topic text, state bytea, notification_id bigserial,"
    " PRIMARY KEY (originator_id, originator_version))"
)
PG_RAW_INSERT = (
    "INSERT INTO raw_events (originator_id, originator_version, topic, state)"
    " VALUES (%s, %s, %s, %s)"
)
PARTS = ("appends", "rebuild", "e2e")
POSTGRES_ADMIN_URL = os.environ.get(
    "TPC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def store_url(where: Path | str) -> str:
    """TPC_DATABASE_URL of a store: a path is a SQLite file."""
    return where if isinstance(where, str) else f"sqlite:///{where}"


@contextmanager
def opened(where: Path | str) -> Iterator[tuple[Database, EventStore]]:
    """The database and the event store, as `Service` opens them (without the views)."""
    database = open_database(Settings(database_url=store_url(where)))
    try:
        with database.schema_lock():
            store = EventStore(database)
            apply_migrations(database)
        try:
            yield database, store
        finally:
            store.close()
    finally:
        database.close()


def signal_config_text() -> str:
    return (EXAMPLES / "signals.yaml").read_text()


def transcript_object(kind: str, label: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (EXAMPLES / "transcripts" / f"{kind}__{label}.json").read_text()
    )
    return document


@dataclass(frozen=True)
class Outcome:
    """What a worker records for one replayed run: the payloads of its events."""

    status: str
    reason: str
    stats: RecordedStats
    ref: str
    signals: dict[str, SignalValue]


def example_outcomes(config_text: str) -> list[Outcome]:
    """Each example transcript through the worker's path: stats, signals, transcript ref."""
    extractor = Extractor(load_signal_config(config_text).require_valid())
    outcomes = []
    for kind in TASK_KINDS:
        for label in LABELS:
            path = EXAMPLES / "transcripts" / f"{kind}__{label}.json"
            transcript = parse_transcript(path.read_bytes(), path.name)
            stats = derive_stats(transcript, MODEL_PRICES)
            values = extractor.extract(transcript, stats)
            outcomes.append(
                Outcome(
                    status=transcript.status or "passed",
                    reason=transcript.termination_reason or "completed",
                    stats=RecordedStats.of(stats),
                    ref=content_ref(transcript.model_dump_json(exclude_none=True).encode()),
                    signals=values,
                )
            )
    return outcomes


# -- 1. appends -------------------------------------------------------------------------------


def _opened_runs(store: EventStore, count: int) -> list[Run]:
    """Runs whose streams exist already (saved untimed), ready for their next events."""
    runs = [
        Run(
            run_id=new_id("run"),
            experiment_id="exp_benchmark",
            number=1,
            task_id=f"task_{i % 100}",
            environment_id=f"env_{i % 2}",
            repeat=i // 200,
        )
        for i in range(count)
    ]
    for i in range(0, count, 500):
        store.save(*runs[i : i + 500])
    return runs


def _complete(run: Run, outcome: Outcome) -> None:
    run.complete(outcome.status, outcome.reason, outcome.stats, outcome.ref)


def store_appends(where: Path | str, runs: int, per_save: int, outcomes: list[Outcome]) -> float:
    """Seconds spent in `EventStore.save` writing 2 × `runs` events, `per_save` per save.
    The events are made before the clock starts: only the save is timed."""
    with opened(where) as (_, store):
        opened_runs = _opened_runs(store, runs)
        if per_save == 1:
            for run in opened_runs:
                run.start()
            started = time.perf_counter()
            for run in opened_runs:
                store.save(run)
            elapsed = time.perf_counter() - started
            for i, run in enumerate(opened_runs):
                _complete(run, outcomes[i % len(outcomes)])
            started = time.perf_counter()
            for run in opened_runs:
                store.save(run)
            return elapsed + time.perf_counter() - started
        for i, run in enumerate(opened_runs):
            run.start()
            _complete(run, outcomes[i % len(outcomes)])
        step = per_save // 2  # two events per run
        started = time.perf_counter()
        for i in range(0, runs, step):
            store.save(*opened_runs[i : i + step])
        return time.perf_counter() - started


def raw_appends(store_path: Path, raw_path: Path, runs: int, per_commit: int) -> float:
    """Seconds to insert the rows the store wrote in the timed part (the same ids, topics and
    state bytes) into a fresh table of the same shape: `per_commit` rows per transaction."""
    with sqlite3.connect(store_path) as source:
        rows = source.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events"
            " ORDER BY rowid"
        ).fetchall()
    source.close()
    untimed, timed = rows[:runs], rows[runs:]  # the Opened events were saved untimed
    db = sqlite3.connect(raw_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(RAW_TABLE)
        db.execute("BEGIN")
        db.executemany(RAW_INSERT, untimed)
        db.execute("COMMIT")
        started = time.perf_counter()
        if per_commit == 1:
            for row in timed:
                db.execute("BEGIN")
                db.execute(RAW_INSERT, row)
                db.execute("COMMIT")
        else:
            for i in range(0, len(timed), per_commit):
                db.execute("BEGIN")
                db.executemany(RAW_INSERT, timed[i : i + per_commit])
                db.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        db.close()


def raw_appends_postgres(url: str, runs: int, per_commit: int) -> float:
    """As `raw_appends`, with psycopg into a table of the shape eventsourcing gives its
    PostgreSQL table: one autocommitted INSERT per row, or `executemany` of `per_commit` rows
    in one transaction."""
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute(
            "SELECT originator_id, originator_version, topic, state FROM tpc_events"
            " ORDER BY notification_id"
        ).fetchall()
        untimed, timed = rows[:runs], rows[runs:]  # the Opened events were saved untimed
        db.execute(PG_RAW_TABLE)
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany(PG_RAW_INSERT, untimed)
        started = time.perf_counter()
        if per_commit == 1:
            for row in timed:
                db.execute(PG_RAW_INSERT, row)
        else:
            with db.cursor() as cursor:
                for i in range(0, len(timed), per_commit):
                    with db.transaction():
                        cursor.executemany(PG_RAW_INSERT, timed[i : i + per_commit])
        return time.perf_counter() - started


def payload_bytes(where: Path | str, skip: int) -> float:
    with opened(where) as (database, store):
        position = "rowid" if database.kind == "sqlite" else "notification_id"
        row = database.read_one(
            f"SELECT AVG(LENGTH(state)) FROM {store.events_table} WHERE {position} > ?", (skip,)
        )
    assert row is not None
    return float(row[0])


# -- 2. projection rebuild --------------------------------------------------------------------


@dataclass
class Log:
    events: int
    iterations: int
    runs: int


def build_log(
    where: Path | str,
    target_events: int,
    tasks: int,
    repeats: int,
    per_save: int,
    config_text: str,
) -> Log:
    """A log of real iterations: the catalog and experiments through the service, then
    iterations and runs straight through the aggregates, `per_save` runs per save."""
    outcomes = example_outcomes(config_text)
    report = load_signal_config(config_text)
    signal_config = FrozenSignalConfig(
        text=config_text, parsed=report.require_valid(), hash=report.content_hash
    )
    service = Service(Settings(database_url=store_url(where)))
    try:
        bootstrap = service.catalog.bootstrap("benchmark-token")
        assert bootstrap is not None
        product = bootstrap.product_id
        task_ids, env_ids = create_catalog(service, product, tasks)
        experiments = [
            service.experiments.create_experiment(
                product, f"Experiment {i}", task_ids, env_ids, repeats, config_text
            ).id
            for i in range(5)
        ]
        frozen_tasks = {
            tid: TaskDefinition.model_validate(_frozen(service.views.task_definition(product, tid)))
            for tid in task_ids
        }
        frozen_envs = {
            eid: EnvironmentDefinition.model_validate(
                _frozen(service.views.environment_definition(product, eid))
            )
            for eid in env_ids
        }
        loaded = {
            exp_id: service.store.load(Experiment, stream_id(exp_id), exp_id)
            for exp_id in experiments
        }
        store = service.store
        iterations = runs = 0
        while store.last_position() < target_events:
            experiment = loaded[experiments[iterations % len(experiments)]]
            number = experiment.start_iteration()
            planned = plan_runs(
                experiment.task_ids,
                experiment.env_ids,
                repeats,
                [new_id("run") for _ in range(len(task_ids) * len(env_ids) * repeats)],
            )
            iteration = Iteration(
                experiment_id=experiment.public_id,
                product_id=product,
                number=number,
                signal_config=signal_config,
                tasks=frozen_tasks,
                environments=frozen_envs,
                runs=planned,
            )
            store.save(experiment, iteration)
            for start in range(0, len(planned), per_save):
                batch = []
                for i, plan in enumerate(planned[start : start + per_save], start):
                    outcome = outcomes[i % len(outcomes)]
                    run = Run(
                        run_id=plan.run_id,
                        experiment_id=experiment.public_id,
                        number=number,
                        task_id=plan.task_id,
                        environment_id=plan.environment_id,
                        repeat=plan.repeat,
                    )
                    run.start()
                    _complete(run, outcome)
                    run.record_signals(signal_config.hash, outcome.signals)
                    batch.append(run)
                store.save(*batch)
            iteration.complete()
            store.save(iteration)
            iterations += 1
            runs += len(planned)
        return Log(store.last_position(), iterations, runs)
    finally:
        service.close()


def _frozen(definition: dict[str, Any]) -> dict[str, Any]:
    """As `ExperimentCommands.trigger` freezes a definition into an iteration."""
    return {k: v for k, v in definition.items() if k not in ("id", "created_at")}


def create_catalog(service: Service, product: str, tasks: int) -> tuple[list[str], list[str]]:
    """`tasks` tasks and one replay environment per example label, each with a transcript
    for every task (keyed by the task's name)."""
    names = [f"task-{i:04d}" for i in range(tasks)]
    task_ids = [
        service.catalog.create_task(
            product, {"name": name, "prompt": f"{TASK_KINDS[i % len(TASK_KINDS)]}: {name}"}
        ).id
        for i, name in enumerate(names)
    ]
    objects = {
        (kind, label): transcript_object(kind, label) for kind in TASK_KINDS for label in LABELS
    }
    env_ids = [
        service.catalog.create_environment(
            product,
            {
                "name": label,
                "agent": {
                    "kind": "replay",
                    "transcripts": {
                        name: objects[TASK_KINDS[i % len(TASK_KINDS)], label]
                        for i, name in enumerate(names)
                    },
                },
            },
        ).id
        for label in LABELS
    ]
    return task_ids, env_ids


def decode_loop(store: EventStore, database: Database) -> tuple[float, int]:
    """Seconds to read every notification and decode it to a domain event with the
    eventsourcing library's mapper, writing nothing (read as the projector reads: through its
    connection, in one transaction). The baseline the rebuild is compared with, unchanged
    since the first measurements: the projector's own decoding is faster (`projector_decode`)."""
    with database.write() as db:
        started = time.perf_counter()
        position = count = 0
        while notifications := store.read_notifications(db, position, BATCH):
            for notification in notifications:
                store.mapper.to_domain_event(notification)
            position = notifications[-1].id
            count += len(notifications)
        return time.perf_counter() - started, count


def projector_decode(store: EventStore, database: Database) -> float:
    """Seconds the rebuild spends reading and decoding the log, alone: its reads
    (`EventStore.read_events`, batches of `REBUILD_BATCH`) iterated without applying them."""
    with database.write() as db:
        started = time.perf_counter()
        position = 0
        while True:
            events, last = store.read_events(db, position, REBUILD_BATCH, handled)
            for _ in events:
                pass
            if last == position:
                return time.perf_counter() - started
            position = last


def rebuild(where: Path | str) -> tuple[float, float, float, int]:
    """(rebuild seconds, mapper decode seconds, projector decode seconds, events)."""
    with opened(where) as (database, store):
        projector = Projector(store, database)
        try:
            decode_seconds, count = decode_loop(store, database)
            own_decode_seconds = projector_decode(store, database)
            started = time.perf_counter()
            position = projector.rebuild()
            rebuild_seconds = time.perf_counter() - started
            assert position == store.last_position()
            return rebuild_seconds, decode_seconds, own_decode_seconds, count
        finally:
            projector.close()


def check_views(where: Path | str, log: Log) -> None:
    with opened(where) as (database, _):
        (runs,) = database.read("SELECT COUNT(*) FROM v_runs WHERE signals IS NOT NULL")[0]
        (done,) = database.read("SELECT COUNT(*) FROM v_iterations WHERE status = 'completed'")[0]
    if (runs, done) != (log.runs, log.iterations):
        raise RuntimeError(f"rebuilt views hold {runs} runs, {done} iterations; expected {log}")


# -- 3. end to end ----------------------------------------------------------------------------


async def _follow_log(service: Service, interval: float) -> None:
    """The follower `tpc serve` runs beside the executor."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(service.projector.catch_up)


async def _run_iteration(
    service: Service, product: str, exp_id: str, concurrency: int, poll: float
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    follower = asyncio.create_task(_follow_log(service, poll)) if poll > 0 else None
    try:
        status = await asyncio.to_thread(service.experiments.trigger, product, exp_id)
        runners: dict[str, Any] = {
            "replay": ReplayRunner(service.blobs.get),
            "scripted": ScriptedRunner(),
        }
        executor = Executor(service.runs, runners, concurrency)
        await executor.submit(exp_id, status.iteration)
        await executor.drain()
        final = await asyncio.to_thread(
            service.views.iteration_status, product, exp_id, status.iteration
        )
        return time.perf_counter() - started, document(final)
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)


def end_to_end(
    where: Path | str, tasks: int, repeats: int, concurrency: int, poll: float
) -> tuple[float, dict[str, Any]]:
    service = Service(Settings(database_url=store_url(where)))
    try:
        bootstrap = service.catalog.bootstrap("benchmark-token")
        assert bootstrap is not None
        product = bootstrap.product_id
        task_ids, env_ids = create_catalog(service, product, tasks)
        exp_id = service.experiments.create_experiment(
            product, "End to end", task_ids, env_ids, repeats, signal_config_text()
        ).id
        return asyncio.run(_run_iteration(service, product, exp_id, concurrency, poll))
    finally:
        service.close()


# -- PostgreSQL -------------------------------------------------------------------------------


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str | None]:
    """A new database `tpc_bench_<random>` (dropped at the end), or None when the server is
    not reachable."""
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        print(f"PostgreSQL: not reachable at {admin_url} ({reason}): skipped")
        yield None
        return
    name = f"tpc_bench_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(admin_url)
    password = f":{params['password']}" if params.get("password") else ""
    url = (
        f"postgresql://{params.get('user') or ''}{password}@{params.get('host') or '127.0.0.1'}:"
        f"{params.get('port') or 5432}/{name}"
    )
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty(url: str) -> str:
    """The PostgreSQL database emptied (every part of the benchmark starts from nothing)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")
    return url


# -- the command ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    appends: int
    events: int
    e2e_tasks: int
    e2e_repeats: int
    concurrency: int
    poll: float


def measure_appends(
    figures: dict[str, Any],
    prefix: str,
    sizes: Sizes,
    outcomes: list[Outcome],
    work: Path,
    postgres: str | None,
) -> None:
    baseline = "raw psycopg" if postgres else "raw sqlite3"
    print(f"  appends: {2 * sizes.appends} Run.Started/Run.Completed events per test")
    for per_save, name in ((1, "single"), (10, "batch")):
        where: Path | str = empty(postgres) if postgres else work / f"appends-{per_save}.db"
        seconds = store_appends(where, sizes.appends, per_save, outcomes)
        if postgres:
            raw = raw_appends_postgres(postgres, sizes.appends, per_save)
        else:
            raw = raw_appends(
                Path(str(where)), work / f"raw-{per_save}.db", sizes.appends, per_save
            )
        events = 2 * sizes.appends
        size = payload_bytes(where, sizes.appends)
        figures[f"{prefix}append_{name}_eps"] = events / seconds
        figures[f"{prefix}append_{name}_raw_eps"] = events / raw
        figures[f"{prefix}append_{name}_ratio"] = raw / seconds
        label = "1 event per save  " if per_save == 1 else "10 events per save"
        print(
            f"    {label}: EventStore.save {events / seconds:8.0f} events/s | {baseline} "
            f"{events / raw:8.0f} rows/s | ratio {raw / seconds:.2f}  "
            f"(state {size:.0f} B/event)"
        )


def measure_rebuild(
    figures: dict[str, Any], prefix: str, sizes: Sizes, config_text: str, where: Path | str
) -> None:
    started = time.perf_counter()
    log = build_log(where, sizes.events, tasks=20, repeats=10, per_save=50, config_text=config_text)
    build_seconds = time.perf_counter() - started
    rebuild_seconds, decode_seconds, own_decode_seconds, count = rebuild(where)
    check_views(where, log)
    figures.update(
        {
            f"{prefix}rebuild_events": count,
            f"{prefix}rebuild_eps": count / rebuild_seconds,
            f"{prefix}decode_eps": count / decode_seconds,
            f"{prefix}projector_decode_eps": count / own_decode_seconds,
            f"{prefix}rebuild_ratio": decode_seconds / rebuild_seconds,
        }
    )
    print(
        f"  projection rebuild: {count} events ({log.iterations} iterations, {log.runs} runs;"
        f" log built in {build_seconds:.1f} s, {count / build_seconds:.0f} events/s)"
    )
    print(
        f"    decode only (read + eventsourcing mapper): {decode_seconds:6.2f} s "
        f"{count / decode_seconds:8.0f} events/s"
    )
    print(
        f"    decode only (the projector's read_events): {own_decode_seconds:6.2f} s "
        f"{count / own_decode_seconds:8.0f} events/s"
    )
    print(
        f"    Projector.rebuild()                        : {rebuild_seconds:6.2f} s "
        f"{count / rebuild_seconds:8.0f} events/s  (target >= 20000)"
    )
    print(
        f"    ratio (decode time / rebuild time): {decode_seconds / rebuild_seconds:.2f}"
        f"  (the projector's own decoding: {own_decode_seconds / rebuild_seconds:.0%} of the"
        " rebuild)"
    )


def measure_end_to_end(
    figures: dict[str, Any], prefix: str, sizes: Sizes, where: Path | str
) -> None:
    runs = sizes.e2e_tasks * len(LABELS) * sizes.e2e_repeats
    seconds, status = end_to_end(
        where, sizes.e2e_tasks, sizes.e2e_repeats, sizes.concurrency, sizes.poll
    )
    counts = {k: v for k, v in status["runs"].items() if v and k != "total"}
    figures.update(
        {
            f"{prefix}e2e_runs": status["runs"]["total"],
            f"{prefix}e2e_seconds": seconds,
            f"{prefix}e2e_ms_per_run": 1000 * seconds / runs,
            f"{prefix}e2e_status": status["status"],
        }
    )
    print(
        f"  end to end: {runs} runs ({sizes.e2e_tasks} tasks × {len(LABELS)} replay environments"
        f" × {sizes.e2e_repeats} repeats), concurrency {sizes.concurrency}, follower every "
        f"{sizes.poll:g} s"
    )
    print(
        f"    trigger → iteration {status['status']}: {seconds:6.2f} s, "
        f"{1000 * seconds / runs:.1f} ms/run  (target: 2000 runs < 60 s)  {counts}"
    )


def measure_parts(
    figures: dict[str, Any],
    prefix: str,
    parts: set[str],
    sizes: Sizes,
    outcomes: list[Outcome],
    config_text: str,
    appends_at: tuple[Path, str | None],
    store_for: Callable[[str], Path | str],
) -> None:
    """The chosen measurements on one kind of store; `store_for(part)` is asked just before
    each of rebuild and e2e."""
    if "appends" in parts:
        measure_appends(figures, prefix, sizes, outcomes, *appends_at)
    if "rebuild" in parts:
        measure_rebuild(figures, prefix, sizes, config_text, store_for("rebuild"))
    if "e2e" in parts:
        measure_end_to_end(figures, prefix, sizes, store_for("e2e"))


def sizes_of(args: argparse.Namespace) -> Sizes:
    """The sizes asked for, else the quick or the full defaults."""
    appends = args.appends or (100 if args.quick else 5000)
    return Sizes(
        appends=appends - appends % 5,  # batches of 5 runs × 2 events
        events=args.events or (3000 if args.quick else 200_000),
        e2e_tasks=args.tasks or (3 if args.quick else 100),
        e2e_repeats=args.repeats or (2 if args.quick else 10),
        concurrency=args.concurrency,
        poll=args.poll,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--appends", type=int, help="runs per append test (2 events each)")
    parser.add_argument("--events", type=int, help="events in the log rebuilt")
    parser.add_argument("--tasks", type=int, help="tasks in the end-to-end iteration")
    parser.add_argument("--repeats", type=int, help="repeats in the end-to-end iteration")
    parser.add_argument("--concurrency", type=int, default=16, help="executor concurrency")
    parser.add_argument("--poll", type=float, default=0.2, help="log follower interval (0: off)")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN_URL,
        help="a PostgreSQL role that may create databases (default TPC_BENCH_POSTGRES_URL or "
        "%(default)s); the benchmark makes its own database and drops it",
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="which measurements, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if parts - set(PARTS):
        parser.error(f"--parts: choose among {', '.join(PARTS)}")
    sizes = sizes_of(args)
    config_text = signal_config_text()
    figures: dict[str, Any] = {}
    outcomes = example_outcomes(config_text)

    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="tpc-store-bench-") as tmp:
            work = Path(tmp)
            print("SQLite (a file in WAL mode):")
            stores = {"rebuild": work / "log.db", "e2e": work / "e2e.db"}
            measure_parts(
                figures, "", parts, sizes, outcomes, config_text, (work, None), stores.__getitem__
            )

    if not args.no_postgres:
        with postgres_database(args.postgres) as url:
            if url is not None:
                print(f"PostgreSQL ({url}):")
                measure_parts(
                    figures,
                    "pg_",
                    parts,
                    sizes,
                    outcomes,
                    config_text,
                    (Path("."), url),
                    lambda _part: empty(url),  # every part starts from an empty database
                )
    return figures


if __name__ == "__main__":
    main()
