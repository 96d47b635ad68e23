"""One contract per storage port, run against both adapters (SQLite and PostgreSQL): the
database port our tables use, the event store, the blob store, and the projector with its
views."""

from __future__ import annotations

import threading
import zlib
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from application.service import Service
from domain.catalog import Product, Task
from domain.errors import NotFound
from domain.experiments import Experiment
from domain.ids import stream_id
from infra.settings import Settings
from infra.store import pg_batch
from infra.store.database import Database, Guard, GuardFailed
from infra.store.migrations import MIGRATIONS
from projections.follower import SCHEMA_MARK, VIEWS_VERSION
from projections.views import VIEW_TABLES


def experiment(name: str = "contract") -> Experiment:
    return Experiment(public_id=f"exp_{name}", product_id="prd_contract", name=name, repeats=1)


# -- the database port ------------------------------------------------------------------------


def write_then_fail(database: Any, statement: str, values: tuple[Any, ...]) -> None:
    """Execute `statement` in a write, then fail before the write commits."""
    with database.write() as db:
        db.execute(statement, values)
        raise RuntimeError("abandon the transaction")


def test_a_write_commits_on_exit_and_rolls_back_on_error(service: Service) -> None:
    database = service.database
    with database.write() as db:
        db.execute(database.ddl("CREATE TABLE t_port (k TEXT PRIMARY KEY, n {int} NOT NULL)"))
        db.execute("INSERT INTO t_port (k, n) VALUES (?, ?)", ("kept", 1))
    with pytest.raises(RuntimeError, match="abandon"):
        write_then_fail(database, "INSERT INTO t_port (k, n) VALUES (?, ?)", ("lost", 2))
    assert [tuple(row) for row in database.read("SELECT k, n FROM t_port ORDER BY k")] == [
        ("kept", 1)
    ]


def test_rows_read_by_name_position_and_unpacking(service: Service) -> None:
    database = service.database
    with database.write() as db:
        db.execute(
            database.ddl(
                "CREATE TABLE t_rows (seq {serial}, n {int} NOT NULL, data {bytes}, note TEXT)"
            )
        )
        db.executemany(
            "INSERT INTO t_rows (n, data, note) VALUES (?, ?, ?)",
            [(2**40, b"\x00\xffbytes", "a"), (7, None, "b")],
        )
    first = database.read_one("SELECT seq, n, data, note FROM t_rows WHERE note = ?", ("a",))
    assert first is not None
    assert (first["seq"], first["n"], bytes(first["data"]), first[3]) == (
        1,
        2**40,
        b"\x00\xffbytes",
        "a",
    )
    assert first.keys() == ["seq", "n", "data", "note"]
    assert [(seq, note) for seq, _, _, note in database.read("SELECT * FROM t_rows")] == [
        (1, "a"),
        (2, "b"),
    ]
    assert database.read_one("SELECT n FROM t_rows WHERE note = ?", ("zzz",)) is None


def open_gate(database: Database) -> None:
    with database.write() as db:
        db.execute(database.ddl("CREATE TABLE t_gate (k TEXT PRIMARY KEY, n {int} NOT NULL)"))
        db.executemany("INSERT INTO t_gate (k, n) VALUES (?, ?)", [("gate", 1), ("row", 2)])


def gate(key: str) -> Guard:
    """Holds while the row `key` has n = 1."""
    return Guard(
        "SELECT n FROM t_gate WHERE k = ?", (key,), lambda rows: bool(rows) and rows[0]["n"] == 1
    )


def test_reads_under_a_guard_answer_only_while_it_holds(service: Service) -> None:
    database = service.database
    open_gate(database)
    row = "SELECT k, n FROM t_gate WHERE k = ?"
    with database.guarded(gate("gate")):
        assert [tuple(r) for r in database.read(row, ("row",))] == [("row", 2)]
        assert [tuple(r) for r in database.read(row, ("gate",))] == [("gate", 1)]
    hostile = "x'; DROP TABLE t_gate; --"
    answered = []
    with pytest.raises(GuardFailed), database.guarded(gate(hostile)):
        answered.append(database.read(row, ("row",)))
    assert answered == []
    # However the block ends, a failed guard is what it raises; a held one lets it through.
    with pytest.raises(GuardFailed), database.guarded(gate("missing")):
        pass
    with pytest.raises(GuardFailed), database.guarded(gate("missing")):
        raise NotFound("the block's own error")
    with pytest.raises(GuardFailed), database.guarded(gate("missing")):
        database.read("SELECT no_such_column FROM t_gate")
    with pytest.raises(NotFound), database.guarded(gate("gate")):
        raise NotFound("the block's own error")
    assert [tuple(r) for r in database.read("SELECT k FROM t_gate ORDER BY k")] == [
        ("gate",),
        ("row",),
    ]


def test_nothing_is_written_under_a_guard_that_fails(service: Service) -> None:
    database = service.database
    open_gate(database)
    insert = "INSERT INTO t_gate (k, n) VALUES (?, ?)"
    with pytest.raises(GuardFailed), database.guarded(gate("missing")):
        database.write_one(insert, ("one", 3))
    with pytest.raises(GuardFailed), database.guarded(gate("missing")), database.write() as db:
        db.execute(insert, ("two", 3))
    with database.guarded(gate("gate")):
        database.write_one(insert, ("three", 3))
    assert [r["k"] for r in database.read("SELECT k FROM t_gate WHERE n = 3")] == ["three"]


def test_reads_together_answer_each_query_in_order(service: Service) -> None:
    database = service.database
    open_gate(database)
    row = "SELECT k, n FROM t_gate WHERE k = ?"
    queries = [(row, ("row",)), ("SELECT k FROM t_gate WHERE n > ?", (9,)), (row, ("gate",))]
    expected = [[("row", 2)], [], [("gate", 1)]]
    assert [[tuple(r) for r in rows] for rows in database.read_together(queries)] == expected
    with database.guarded(gate("gate")):
        answers = database.read_together(queries)
    assert [[tuple(r) for r in rows] for rows in answers] == expected
    answered = []
    with pytest.raises(GuardFailed), database.guarded(gate("missing")):
        answered.append(database.read_together(queries))
    assert answered == []
    assert database.read_together([]) == []


def test_an_event_save_under_a_guard_that_fails_saves_nothing(service: Service) -> None:
    """A request may act on a token's guessed product: its saves wait for the check."""
    database, store = service.database, service.store
    open_gate(database)
    before = store.last_position()
    with pytest.raises(GuardFailed), database.guarded(gate("missing")):
        store.save(experiment("refused"))
    assert store.last_position() == before
    with database.guarded(gate("gate")):
        store.save(experiment("kept"))
    assert store.last_position() == before + 1


def test_a_guard_goes_with_the_first_read_on_postgresql(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load each round trip waits for the GIL: the guard costs none of its own."""
    svc = Service(Settings(database_url=postgres_url))
    try:
        database = svc.database
        open_gate(database)
        sent: list[str] = []
        execute = psycopg.Cursor.execute

        def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(query.decode() if isinstance(query, bytes) else str(query))
            return execute(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)
        with database.guarded(gate("gate")):
            database.read("SELECT n FROM t_gate WHERE k = ?", ("row",))
            database.read("SELECT n FROM t_gate WHERE k = ?", ("gate",))
        assert len(sent) == 2, sent
        assert sent[0].count("SELECT") == 2 and "'gate'" in sent[0] and "'row'" in sent[0]
        sent.clear()
        with database.guarded(gate("gate")):
            database.read_together([("SELECT 1", ()), ("SELECT n FROM t_gate", ())])
        database.read_together([("SELECT 2", ()), ("SELECT 3", ())])
        assert len(sent) == 2, sent
        assert sent[0].count("SELECT") == 3 and "'gate'" in sent[0]
    finally:
        svc.close()


def test_upserts_insert_then_update(service: Service) -> None:
    database = service.database
    with database.write() as db:
        db.execute(database.ddl("CREATE TABLE t_up (k TEXT PRIMARY KEY, n {int} NOT NULL)"))
        for n in (1, 2):
            db.execute(
                "INSERT INTO t_up (k, n) VALUES (?, ?)"
                " ON CONFLICT (k) DO UPDATE SET n = excluded.n",
                ("k", n),
            )
        db.execute("INSERT INTO t_up (k, n) VALUES (?, ?) ON CONFLICT (k) DO NOTHING", ("k", 9))
    assert [tuple(row) for row in database.read("SELECT k, n FROM t_up")] == [("k", 2)]


def test_inserted_rows_land_whole_in_a_write_and_in_a_derived_write(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`insert_rows` copies (a write on PostgreSQL) or sends multi-row INSERTs (a catch-up's
    batched derived write, here with fewer rows per statement than rows to insert)."""
    monkeypatch.setattr(pg_batch, "ROWS_PER_INSERT", 2)
    database = service.database
    rows = [(i, f"row {i}", None if i % 2 else b"\x00") for i in range(5)]
    with database.write() as db:
        db.execute(database.ddl("CREATE TABLE t_ins (n {int}, note TEXT, data {bytes})"))
        db.insert_rows("t_ins", ("n", "note", "data"), rows[:2])
    with database.derived_write() as db:
        db.insert_rows("t_ins", ("n", "note", "data"), rows[2:])
    found = database.read("SELECT n, note, data FROM t_ins ORDER BY n")
    assert [(n, note, None if data is None else bytes(data)) for n, note, data in found] == rows


def _increment(database: Database, times: int) -> None:
    for _ in range(times):
        with database.write() as db:
            database.lock(db, "counter")
            (value,) = db.execute("SELECT n FROM t_counter").fetchone()
            db.execute("UPDATE t_counter SET n = ?", (value + 1,))


def test_the_lock_serialises_read_modify_write_transactions(store_url: str) -> None:
    """Two processes' worth of writers (two services), each reading then writing a counter
    under the lock: no update is lost."""
    first, second = Service(Settings(database_url=store_url)), None
    try:
        second = Service(Settings(database_url=store_url))
        with first.database.write() as db:
            db.execute(first.database.ddl("CREATE TABLE t_counter (n {int} NOT NULL)"))
            db.execute("INSERT INTO t_counter (n) VALUES (0)")
        threads = [
            threading.Thread(target=_increment, args=(svc.database, 25))
            for svc in (first, second, first, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert tuple(first.database.read("SELECT n FROM t_counter")[0]) == (100,)
    finally:
        first.close()
        if second is not None:
            second.close()


# -- the event store --------------------------------------------------------------------------


def test_saved_aggregates_load_back_and_missing_ones_are_not_found(service: Service) -> None:
    store = service.store
    exp = experiment()
    exp.rename("renamed")
    store.save(exp)
    loaded = store.load(Experiment, exp.id, "experiment exp_contract")
    assert (loaded.name, loaded.version) == ("renamed", 2)
    assert store.load(Experiment, exp.id, "x", version=1).name == "contract"
    assert store.exists(exp.id)
    missing = stream_id("exp_missing")
    assert not store.exists(missing)
    with pytest.raises(NotFound, match="experiment exp_missing not found"):
        store.load(Experiment, missing, "experiment exp_missing")
    with pytest.raises(NotFound, match="task x not found"):
        store.load(Task, exp.id, "task x")  # a stream of another kind


def test_the_log_is_ordered_and_read_alike_through_either_path(service: Service) -> None:
    store = service.store
    base = store.last_position()
    aggregates: list[Any] = [experiment(f"e{i}") for i in range(3)]
    aggregates.append(Product(public_id="prd_log", name="p", token_hash="h"))
    store.save(*aggregates[:2])
    store.save(*aggregates[2:])
    notifications = list(store.notifications(base, 100))
    ids = [n.id for n in notifications]
    assert len(ids) == 4 and ids == sorted(ids) and len(set(ids)) == 4
    assert store.last_position() == ids[-1]
    assert [n.originator_id for n in notifications] == [a.id for a in aggregates]
    with service.database.write() as db:
        through_connection = store.read_notifications(db, base, 100)
    assert [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications
    ] == [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in through_connection
    ]
    assert [type(store.to_event(n)).__qualname__ for n in notifications[:3]] == [
        "Experiment.Created"
    ] * 3
    assert list(store.notifications(ids[1], 2)) == notifications[2:4]


def test_a_conflicting_save_is_rejected_whole(service: Service) -> None:
    """Optimistic concurrency: two writers change the same stream from the same version; the
    second save fails and records nothing, not even its other aggregates."""
    store = service.store
    exp = experiment()
    store.save(exp)
    mine = store.load(Experiment, exp.id, "exp")
    theirs = store.load(Experiment, exp.id, "exp")
    theirs.rename("theirs")
    store.save(theirs)
    before = store.last_position()
    mine.rename("mine")
    other = experiment("bystander")
    with pytest.raises(IntegrityError):
        store.save(other, mine)
    assert store.last_position() == before
    assert not store.exists(other.id)
    assert store.load(Experiment, exp.id, "exp").name == "theirs"


def test_concurrent_saves_land_whole_with_their_own_positions(service: Service) -> None:
    """Many threads save at once (on PostgreSQL they share transactions: group commit): each
    save gets the positions of its own events, and of saves that change one stream from the
    same version exactly one lands, whole, while the others land nothing, not even their
    other aggregates."""
    store = service.store
    contested = experiment("contested")
    store.save(contested)
    base = store.last_position()
    threads = 12
    start = threading.Barrier(threads)
    landed: dict[int, list[tuple[int, Any]]] = {}
    refused: list[int] = []
    failures: list[BaseException] = []

    def save(i: int) -> None:
        try:
            copy = store.load(Experiment, contested.id, "exp")
            copy.rename(f"by {i}")
            mine = experiment(f"mine {i}")
            start.wait()
            try:
                recordings = store.save(mine, copy)
            except IntegrityError:
                refused.append(i)
            else:
                landed[i] = [(r.notification.id, r.notification.originator_id) for r in recordings]
            alone = store.save(experiment(f"alone {i}"))
            landed[100 + i] = [(r.notification.id, r.notification.originator_id) for r in alone]
        except BaseException as error:  # surfaced below, in the test's thread
            failures.append(error)

    workers = [threading.Thread(target=save, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    assert len(refused) == threads - 1 and len(landed) == threads + 1
    in_log = [(n.id, n.originator_id) for n in store.notifications(base, 1000)]
    assert sorted(pair for pairs in landed.values() for pair in pairs) == in_log
    (winner,) = set(range(threads)) - set(refused)
    assert store.load(Experiment, contested.id, "exp").name == f"by {winner}"
    assert service.projector.catch_up() == store.last_position()


# -- the blob store ---------------------------------------------------------------------------


def test_blobs_are_content_addressed_compressed_and_stored_once(service: Service) -> None:
    blobs = service.blobs
    data = b'{"messages": [' + b'{"role": "assistant", "text": "hello"},' * 500 + b"{}]}"
    ref = blobs.put(data)
    assert ref.startswith("sha256:") and blobs.put(data) == ref
    assert blobs.get(ref) == data
    rows = service.database.read("SELECT data FROM blobs WHERE ref = ?", (ref,))
    assert len(rows) == 1
    stored = bytes(rows[0]["data"])
    assert len(stored) < len(data) / 10 and zlib.decompress(stored) == data
    assert blobs.get(blobs.put(b"")) == b""
    with pytest.raises(KeyError):
        blobs.get("sha256:" + "0" * 64)


def test_blobs_are_read_many_to_a_query(service: Service) -> None:
    blobs = service.blobs
    stored = {blobs.put(f"transcript {n}".encode()): f"transcript {n}".encode() for n in range(120)}
    refs = [*stored, *list(stored)[:5]]  # a ref twice is read once
    assert dict(blobs.get_many(refs)) == stored
    assert list(blobs.get_many([])) == []
    missing = "sha256:" + "0" * 64
    with pytest.raises(KeyError, match=missing):
        dict(blobs.get_many([*list(stored)[:3], missing]))


# -- the projector and its views --------------------------------------------------------------


def dump_views(service: Service) -> dict[str, list[tuple[Any, ...]]]:
    """Every view row (and the tracking position), in a stable order."""
    tables = {
        table: sorted(
            (tuple(row) for row in service.database.read(f"SELECT * FROM {table}")), key=repr
        )
        for table in VIEW_TABLES
    }
    tables["tracking"] = [
        tuple(row) for row in service.database.read("SELECT * FROM tracking ORDER BY name")
    ]
    return tables


def make_history(service: Service, count: int) -> str:
    boot = service.catalog.bootstrap("contract-token")
    owner = boot.product_id if boot else service.catalog.product_for_token("contract-token")
    assert owner is not None
    task = service.catalog.create_task(owner, {"name": "t", "prompt": "p"}).id
    for i in range(count):
        exp = service.experiments.create_experiment(owner, f"exp {i}", [task], [], 1).id
        service.experiments.update_experiment(owner, exp, {"name": f"renamed {i}", "repeats": 2})
        service.experiments.detach(owner, exp, "task", task)
    return owner


def test_catch_up_reaches_the_log_and_a_rebuild_gives_the_same_views(service: Service) -> None:
    owner = make_history(service, 3)
    assert service.projector.catch_up() == service.store.last_position()
    assert service.projector.position() == service.store.last_position()
    listed = service.views.experiments(owner).items
    assert [(e.name, e.repeats, e.task_ids) for e in listed] == [
        (f"renamed {i}", 2, []) for i in range(3)
    ]
    before = dump_views(service)
    assert service.rebuild_projections() == service.store.last_position()
    assert dump_views(service) == before


def test_followers_in_several_processes_apply_each_event_once(store_url: str) -> None:
    """While one service writes (catching up after each command), two others follow the log
    at the same time into the same views: the views end equal to a rebuild from the log (an
    event applied twice would duplicate an audit row's key, one skipped would miss a row)."""
    writer = Service(Settings(database_url=store_url))
    followers = [Service(Settings(database_url=store_url)) for _ in range(2)]
    done = threading.Event()
    failures: list[BaseException] = []

    def follow(follower: Service) -> None:
        try:
            while not done.is_set():
                follower.projector.catch_up()
        except BaseException as error:  # surfaced below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=follow, args=(f,)) for f in followers]
    try:
        for thread in threads:
            thread.start()
        make_history(writer, 8)
        done.set()
        for thread in threads:
            thread.join()
        assert failures == []
        last = writer.store.last_position()
        assert all(f.projector.catch_up() == last for f in followers)
        incremental = dump_views(writer)
        # All but the product's two (Registered, its first TokenIssued) and the task.
        assert len(incremental["v_audit"]) == last - 3
        writer.rebuild_projections()
        assert dump_views(writer) == incremental
    finally:
        done.set()
        for svc in (writer, *followers):
            svc.close()


def test_a_new_views_version_rebuilds_on_open_and_migrations_run_once(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        first = service.schema_report()
        assert first["migrations_applied"] == [
            {"number": m.number, "name": m.name} for m in MIGRATIONS
        ]
        assert (first["views"]["rebuilt"], first["views"]["found_version"]) == (True, None)
        make_history(service, 2)
        before = dump_views(service)
        with service.database.write() as db:  # as if built by an older version of tpc
            db.execute(
                "UPDATE tracking SET position = ? WHERE name = ?", (VIEWS_VERSION - 1, SCHEMA_MARK)
            )
    finally:
        service.close()
    again = Service(Settings(database_url=store_url))
    try:
        report = again.schema_report()
        assert report["migrations_applied"] == []
        assert report["views"] == {
            "version": VIEWS_VERSION,
            "found_version": VIEWS_VERSION - 1,
            "rebuilt": True,
            "position": again.store.last_position(),
        }
        assert dump_views(again) == before
        assert len(again.database.read("SELECT number FROM schema_migrations")) == len(MIGRATIONS)
    finally:
        again.close()
    third = Service(Settings(database_url=store_url))
    try:
        assert third.schema_report()["views"]["rebuilt"] is False
    finally:
        third.close()


HOSTILE_TEXTS = [
    "it's; DROP TABLE t_hostile; --",
    "back\\slash \\' %s ? $1 %% E'x'",
    "é🙂\u2028",
    "x" * 2_000_000,
    "[" * 10_000,
]


def test_a_catch_ups_batch_binds_hostile_values_exactly_and_refuses_what_no_text_holds(
    postgres_url: str,
) -> None:
    """The batched connection binds parameters on the client (pg_batch): quotes, backslashes,
    placeholders and huge text come back as written, and NUL is refused before anything of the
    transaction is written, as binding on the server refuses it."""
    svc = Service(Settings(database_url=postgres_url))
    database = svc.database
    try:
        with database.write() as db:
            db.execute("CREATE TABLE t_hostile (n BIGINT, s TEXT, b BYTEA)")
        with database.derived_write() as db:
            rows = [(i, text, b"\x00\xff'\\") for i, text in enumerate(HOSTILE_TEXTS)]
            db.insert_rows("t_hostile", ("n", "s", "b"), rows)
            db.execute("INSERT INTO t_hostile (n, s) VALUES (?, ?)", (99, "a ? and a %"))
        found = database.read("SELECT n, s, b FROM t_hostile ORDER BY n")
        assert [row["s"] for row in found] == [*HOSTILE_TEXTS, "a ? and a %"]
        assert all(bytes(row["b"]) == b"\x00\xff'\\" for row in found[:-1])
        with pytest.raises(psycopg.DataError, match="NUL"):
            _write_in_a_batch(database, [(100, "kept?"), (101, "a\x00b")])
        assert len(database.read("SELECT n FROM t_hostile")) == len(HOSTILE_TEXTS) + 1
        # A negative number after a minus is a number, not the start of a comment.
        with database.derived_write() as db:
            db.execute("UPDATE t_hostile SET n = n - ? WHERE n = ?", (-1000, 99))
        assert database.read_one("SELECT s FROM t_hostile WHERE n = ?", (1099,)) is not None
    finally:
        svc.close()


def test_client_binding_reads_back_exactly_even_where_backslashes_escape(postgres_url: str) -> None:
    """Where a server quotes the old way (`standard_conforming_strings` off: a backslash in a
    quoted string escapes), doubling quotes would not do: psycopg's own quoting binds there."""
    values = (*HOSTILE_TEXTS[:3], -5, 7, None, True, 1.5, b"\x00\xff'\\")
    statement = "SELECT " + ", ".join("?" for _ in values)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for setting in ("on", "off"):
            connection.execute(f"SET standard_conforming_strings TO {setting}")
            bound = pg_batch.ClientBinding(connection)(statement, values)
            row = connection.execute(bound.encode()).fetchone()
            assert row is not None and (*row[:-1], bytes(row[-1])) == values, setting
        mogrified = psycopg.ClientCursor(connection).mogrify(statement.replace("?", "%s"), values)
        assert bound == mogrified


def _write_in_a_batch(database: Database, rows: list[tuple[int, str]]) -> None:
    with database.derived_write() as db:
        for row in rows:
            db.execute("INSERT INTO t_hostile (n, s) VALUES (?, ?)", row)
