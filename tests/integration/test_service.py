"""The service, the executor and the projections end to end, on each store: a real SQLite file
and the real PostgreSQL server (`store_url` runs every test on both)."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.errors import Conflict, InvalidInput, NotFound
from domain.runs import RecordedStats
from domain.signals.validation import load_signal_config
from infra.runners.replay import ReplayRunner
from infra.runners.scripted import ScriptedRunner
from infra.settings import Settings
from infra.store import pg_batch
from projections.queries import IDS_PER_QUERY, REMEMBERED_ANSWER_CONFIG_CHARS
from projections.read_models import IterationStatus, document
from tests.conftest import ROOT
from tests.offline import offline_report

EXAMPLES = ROOT / "examples"
TASKS = {"install-sdk": "install-sdk", "webhook-setup": "webhook", "refund-payment": "refund"}


def transcript(stem: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / "transcripts" / f"{stem}.json").read_text())
    return document


def run_iteration(
    service: Service, product: str, exp_id: str, concurrency: int = 4
) -> IterationStatus:
    status = service.experiments.trigger(product, exp_id)

    async def execute() -> None:
        runners: dict[str, Any] = {
            "replay": ReplayRunner(service.blobs.get),
            "scripted": ScriptedRunner(),
        }
        executor = Executor(service.runs, runners, concurrency)
        await executor.submit(exp_id, status.iteration)
        await executor.drain()

    asyncio.run(execute())
    return service.views.iteration_status(product, exp_id, status.iteration)


def setup_replay(service: Service) -> tuple[str, str, list[str], list[str]]:
    product = service.catalog.bootstrap("secret-token")
    assert product is not None and product.token is None
    owner = product.product_id
    tasks = [
        service.catalog.create_task(owner, {"name": name, "prompt": f"Please {name}"}).id
        for name in TASKS
    ]
    envs = [
        service.catalog.create_environment(
            owner,
            {
                "name": label,
                "agent": {
                    "kind": "replay",
                    "transcripts": {
                        name: transcript(f"{stem}__{label}") for name, stem in TASKS.items()
                    },
                },
            },
        ).id
        for label in ("sonnet-docs", "gpt-nodocs")
    ]
    config = (EXAMPLES / "signals.yaml").read_text()
    exp = service.experiments.create_experiment(owner, "Replay", tasks, envs, 2, config)
    return owner, exp.id, tasks, envs


def test_replay_iteration_results_equal_the_offline_computation(service: Service) -> None:
    owner, exp_id, _, envs = setup_replay(service)
    status = run_iteration(service, owner, exp_id)
    assert status.status == "completed"
    assert document(status.runs) == {
        "total": 12,
        "queued": 0,
        "running": 0,
        "passed": 6,
        "failed": 4,
        "errored": 0,
        "timed_out": 2,
        "cancelled": 0,
    }
    signals = service.views.signals(owner, exp_id, 1)
    expected = offline_report(EXAMPLES / "signals.yaml", repeats=2)["aggregates"]
    assert [(a["id"], a["value"], a["n"], a["missing"]) for a in signals["aggregates"]] == [
        (a["id"], a["value"], a["n"], a["missing"]) for a in expected
    ]
    results = service.views.results(owner, exp_id, 1)
    assert results.summary["score"] == pytest.approx(6 / 12)
    by_env = {e["environment_id"]: e for e in results.summary["environments"]}
    assert by_env[envs[0]]["score"] == pytest.approx(4 / 6)
    assert by_env[envs[1]]["score"] == pytest.approx(2 / 6)
    assert by_env[envs[1]]["score_delta_to_best"] == pytest.approx(2 / 6 - 4 / 6)
    # A replayed run keeps its recorded status and stats but takes the run's own ids.
    run = service.views.runs(owner, exp_id, 1, status="timed_out").items[0]
    replayed = service.transcripts.transcript(owner, run.id)
    assert replayed["task_id"] == run.task_id
    assert replayed["environment_id"] == envs[1]
    assert run.stats["duration"] == 600.0


def test_a_config_change_never_rewrites_an_earlier_iteration(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    run_iteration(service, owner, exp_id)
    first = service.views.signals(owner, exp_id, 1)
    seed = (EXAMPLES / "seed-signals.yaml").read_text()
    service.experiments.update_experiment(owner, exp_id, {"signal_config": seed})
    run_iteration(service, owner, exp_id)
    assert service.views.signals(owner, exp_id, 1) == first
    second = service.views.signals(owner, exp_id, 2)
    assert second["config_hash"] == load_signal_config(seed).content_hash
    assert second["config_hash"] != first["config_hash"]
    assert [a["id"] for a in second["aggregates"]] == [
        "fabrication-rate",
        "avg-tokens",
        "give-up-rate",
    ]
    compared = service.views.results(owner, exp_id, 2, compare_with=1).compare
    assert compared["iteration"] == 1
    assert compared["score_delta"] == 0


def test_restart_and_rebuild_give_identical_answers(service: Service, store_url: str) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    run_iteration(service, owner, exp_id)
    answers = (
        service.views.results(owner, exp_id, 1),
        service.views.signals(owner, exp_id, 1),
        service.views.history(owner, exp_id),
        service.views.experiment(owner, exp_id),
    )
    service.close()
    again = Service(Settings(database_url=store_url))
    try:
        assert again.catalog.bootstrap(None) is None  # the product is still there
        read = lambda: (  # noqa: E731
            again.views.results(owner, exp_id, 1),
            again.views.signals(owner, exp_id, 1),
            again.views.history(owner, exp_id),
            again.views.experiment(owner, exp_id),
        )
        assert read() == answers
        again.rebuild_projections()
        assert read() == answers
    finally:
        again.close()


def test_an_experiment_read_again_after_a_change_shows_the_change(service: Service) -> None:
    """Experiment answers are remembered by their row: a changed row is a new answer."""
    owner, exp_id, _, _ = setup_replay(service)
    before = service.views.experiments(owner).items[0]
    assert service.views.experiments(owner).items[0] is before  # remembered
    service.experiments.update_experiment(owner, exp_id, {"name": "Renamed"})
    service.experiments.trigger(owner, exp_id)
    after = service.views.experiments(owner).items[0]
    assert (after.name, after.iterations, after.version) == ("Renamed", 1, before.version + 2)
    assert service.views.experiment(owner, exp_id) == after
    assert (before.name, before.iterations) == ("Replay", 0)


def test_experiment_answers_with_a_long_config_are_not_remembered(service: Service) -> None:
    """A product may store configs of up to a megabyte: such answers are shaped every time,
    so that what the server keeps stays small whatever products store."""
    owner, _, tasks, envs = setup_replay(service)
    config = (EXAMPLES / "signals.yaml").read_text()
    long = config + "# " + "x" * REMEMBERED_ANSWER_CONFIG_CHARS + "\n"
    exp = service.experiments.create_experiment(owner, "Long", tasks, envs, 1, long)
    first = service.views.experiment(owner, exp.id)
    assert first.signal_config is not None and first.signal_config.text == long
    assert service.views.experiment(owner, exp.id) is not first
    assert service.views.experiment(owner, exp.id) == first


def test_history_and_as_of(service: Service) -> None:
    owner, exp_id, tasks, _ = setup_replay(service)
    history = service.views.history(owner, exp_id).items
    assert [item.summary for item in history][:2] == [
        "created 'Replay' (repeats 2)",
        f"task {tasks[0]} attached",
    ]
    position = history[1].position
    assert service.experiments.experiment_as_of(owner, exp_id, position).task_ids == [tasks[0]]
    assert (
        len(service.experiments.experiment_as_of(owner, exp_id, history[-1].position).task_ids) == 3
    )


def test_a_creation_finds_its_tasks_and_environments_in_one_query(service: Service) -> None:
    owner, _, tasks, envs = setup_replay(service)
    other = service.catalog.create_product("other")["product"]["id"]
    theirs = service.catalog.create_task(other, {"name": "theirs", "prompt": "p"}).id
    many = [f"task_{i:04}" for i in range(IDS_PER_QUERY + 10)]  # more than one query holds
    found_tasks, found_envs = service.views.definitions_found(
        owner, [*many, tasks[0], theirs, tasks[0]], [*envs, tasks[1]]
    )
    assert found_tasks == {tasks[0]}
    assert found_envs == set(envs)  # a task's id is not an environment's
    before = service.store.last_position()
    for task_ids, env_ids, missing in (
        ([tasks[0], theirs], envs, f"task {theirs} not found"),
        (tasks, [envs[0], "env_nope"], "environment env_nope not found"),
    ):
        with pytest.raises(NotFound, match=missing):
            service.experiments.create_experiment(owner, "x", task_ids, env_ids)
    assert service.store.last_position() == before


def test_bad_input_is_rejected_and_nothing_is_recorded(service: Service) -> None:
    owner, exp_id, _, envs = setup_replay(service)
    before = service.store.last_position()
    with pytest.raises(NotFound, match="experiment exp_nope not found"):
        service.experiments.trigger(owner, "exp_nope")
    with pytest.raises(NotFound, match="task task_zzzz not found"):
        service.experiments.create_experiment(owner, "x", ["task_zzzz"], envs)
    with pytest.raises(InvalidInput) as invalid:
        service.experiments.update_experiment(
            owner, exp_id, {"signal_config": "version: 1\nsignals: []\n"}
        )
    assert invalid.value.problems == (("signals", "must list at least one signal"),)
    with pytest.raises(InvalidInput) as bad_replay:
        service.catalog.create_environment(
            owner,
            {
                "name": "r",
                "agent": {
                    "kind": "replay",
                    "transcripts": {
                        "install-sdk": [
                            transcript("install-sdk__gpt-nodocs"),
                            {"messages": [{"role": "x"}]},
                        ],
                    },
                },
            },
        )
    assert bad_replay.value.problems[0][0] == "agent.transcripts.install-sdk[1].messages[0].role"
    empty = service.experiments.create_experiment(owner, "empty", [], [])
    with pytest.raises(Conflict, match="has no tasks"):
        service.experiments.trigger(owner, empty.id)
    assert service.store.last_position() == before + 1  # only the empty experiment was created


def test_another_products_token_sees_nothing(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    with pytest.raises(NotFound):
        service.views.experiment("prd_other", exp_id)
    with pytest.raises(NotFound):
        service.experiments.trigger("prd_other", exp_id)
    # Its iterations, by number or as `latest`, are as unknown as the experiment.
    run_iteration(service, owner, exp_id)
    views = service.views
    for read in (views.results, views.iteration_status, views.signals):
        assert read(owner, exp_id, "latest") == read(owner, exp_id, 1)
        for number in (1, "latest"):
            with pytest.raises(NotFound, match=f"experiment {exp_id} not found"):
                read("prd_other", exp_id, number)


def test_timeouts_and_cancellation(service: Service) -> None:
    product = service.catalog.bootstrap(None)
    assert product is not None and product.token is not None
    owner = product.product_id
    task = service.catalog.create_task(owner, {"name": "Slow", "prompt": "Take your time"}).id
    slow = service.catalog.create_environment(
        owner,
        {
            "name": "slow",
            "agent": {"kind": "scripted", "step_latency_s": 0.5},
            "limits": {"timeout_s": 0.2},
        },
    ).id
    exp = service.experiments.create_experiment(owner, "timeouts", [task], [slow], 2).id
    status = run_iteration(service, owner, exp)
    assert status.runs.timed_out == 2
    run = service.views.runs(owner, exp, 1).items[0]
    assert (run.termination_reason, run.error) == (
        "timeout",
        "the run exceeded the time limit of 0.2 s",
    )

    forever = service.catalog.create_environment(
        owner,
        {
            "name": "forever",
            "agent": {"kind": "scripted", "step_latency_s": 30},
        },
    ).id
    exp2 = service.experiments.create_experiment(owner, "cancel", [task], [forever], 3).id
    started = service.experiments.trigger(owner, exp2)

    async def cancel_midway() -> None:
        executor = Executor(service.runs, {"scripted": ScriptedRunner()}, 2)
        await executor.submit(exp2, started.iteration)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(service.experiments.cancel, owner, exp2, started.iteration)
        await executor.cancel(exp2, started.iteration)
        await executor.drain()

    asyncio.run(cancel_midway())
    final = service.views.iteration_status(owner, exp2, 1)
    assert final.status == "cancelled"
    assert final.runs.cancelled == 3
    with pytest.raises(Conflict, match="is cancelled and accepts no further change"):
        service.experiments.cancel(owner, exp2, 1)


def test_a_cancel_that_races_the_runs_own_save_still_ends_the_run(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel stops a run's task, not the thread saving its start: when that save lands
    between the cancel's read of the run and its save, the cancel is made again on the run as
    it now stands (it used to fail, and the run and its iteration stayed running)."""
    product = service.catalog.bootstrap(None)
    assert product is not None
    owner = product.product_id
    task = service.catalog.create_task(owner, {"name": "Race", "prompt": "Go"}).id
    env = service.catalog.create_environment(
        owner, {"name": "scripted", "agent": {"kind": "scripted"}}
    ).id
    exp = service.experiments.create_experiment(owner, "race", [task], [env], 1).id
    service.experiments.trigger(owner, exp)
    iteration = service.runs.load_iteration(exp, 1)
    run_id = iteration.runs[0].run_id
    recorded = service.runs.recorded_run

    def started_meanwhile(wanted: str) -> Any:
        found = recorded(wanted)  # the run as the cancel reads it: never started
        monkeypatch.setattr(service.runs, "recorded_run", recorded)
        service.runs.start_run(iteration, wanted)  # the start's save lands first
        return found

    monkeypatch.setattr(service.runs, "recorded_run", started_meanwhile)
    service.runs.cancel_run(iteration, run_id)
    service.projector.catch_up()
    assert service.views.run(owner, run_id).status == "cancelled"


def test_a_jobs_first_attempt_starts_its_run_without_reading_the_stream_unless_it_exists(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue job's first attempt starts the run without reading its (empty) stream; a
    duplicate job of a run that started or ended meanwhile conflicts on the save and is then
    treated as a retry: a started run gets its next attempt, a finished one is left alone."""
    owner, exp_id, _, _ = setup_replay(service)
    iteration = service.runs.load_iteration(
        exp_id, service.experiments.trigger(owner, exp_id).iteration
    )
    fresh, started, finished = (planned.run_id for planned in iteration.runs[:3])
    reads: list[str] = []
    read = service.runs.recorded_run

    def counted(run_id: str) -> Any:
        reads.append(run_id)
        return read(run_id)

    monkeypatch.setattr(service.runs, "recorded_run", counted)
    run = service.runs.start_queued_run(iteration, fresh, first_attempt=True)
    assert run is not None and (run.status, run.attempts) == ("running", 1)
    assert reads == []

    service.runs.start_run(iteration, started)
    again = service.runs.start_queued_run(iteration, started, first_attempt=True)
    assert again is not None and again.attempts == 2
    assert reads == [started, started]

    ended = service.runs.start_run(iteration, finished)
    service.runs.finish_run(ended, "passed", None, RecordedStats(), None, None, None)
    assert service.runs.start_queued_run(iteration, finished, first_attempt=True) is None
    service.projector.catch_up()
    assert service.views.run(owner, finished).status == "passed"
    assert service.views.run(owner, started).attempts == 2


def test_a_jobs_first_attempt_records_its_run_cancelled_when_the_cancel_came_first(
    service: Service,
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    number = service.experiments.trigger(owner, exp_id).iteration
    iteration = service.runs.load_iteration(exp_id, number)
    service.experiments.cancel(owner, exp_id, number)
    run_id = iteration.runs[0].run_id
    assert service.runs.start_queued_run(iteration, run_id, first_attempt=True) is None
    service.projector.catch_up()
    assert service.views.run(owner, run_id).status == "cancelled"


def test_an_interrupted_iteration_resumes_with_a_new_attempt(
    service: Service, store_url: str
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    status = service.experiments.trigger(owner, exp_id)
    iteration = service.runs.load_iteration(exp_id, status.iteration)
    # A process started two runs and died before recording them.
    for planned in iteration.runs[:2]:
        service.runs.start_run(iteration, planned.run_id)
    service.close()
    again = Service(Settings(database_url=store_url))
    try:

        async def resume() -> None:
            executor = Executor(again.runs, {"replay": ReplayRunner(again.blobs.get)}, 4)
            await executor.resume()
            await executor.drain()

        asyncio.run(resume())
        final = again.views.iteration_status(owner, exp_id, 1)
        assert final.status == "completed"
        retried = again.views.run(owner, iteration.runs[0].run_id)
        assert retried.attempts == 2
        assert again.views.run(owner, iteration.runs[5].run_id).attempts == 1
    finally:
        again.close()


def test_failing_runs_are_clustered_once_when_the_iteration_completes(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    run_iteration(service, owner, exp_id)
    results = service.views.results(owner, exp_id, 1)
    clusters = results.failure_clusters
    failing = {
        run.id
        for status in ("failed", "errored", "timed_out")
        for run in service.views.runs(owner, exp_id, 1, status=status).items
    }
    # Every failing run is in exactly one cluster.
    members = [run_id for cluster in clusters for run_id in cluster["run_ids"]]
    assert sorted(members) == sorted(failing)
    assert all(c["size"] == len(c["run_ids"]) for c in clusters)
    categories = {c["category"] for c in clusters}
    assert "Services that did not answer in time" in categories
    assert all(c["root_cause"]["area"] in {"product", "docs", "infra", "agent"} for c in clusters)
    assert results.suggestions
    runs_addressed = [s["runs"] for s in results.suggestions]
    assert runs_addressed == sorted(runs_addressed, reverse=True)
    # --error-category: a name in any case or a cause key, one cluster; an unknown name lists
    # the known ones.
    only = service.views.results(
        owner, exp_id, 1, error_category="services that did not answer in time"
    )
    assert [c["key"] for c in only.failure_clusters] == ["service_timeout"]
    by_key = service.views.results(owner, exp_id, 1, error_category="Service_Timeout")
    assert by_key.failure_clusters == only.failure_clusters
    with pytest.raises(NotFound, match="no failure cluster named 'Nope'"):
        service.views.results(owner, exp_id, 1, error_category="Nope")
    history = [item.summary for item in service.views.history(owner, exp_id).items]
    assert any("failure clusters" in summary for summary in history)


def test_a_second_iteration_compares_its_clusters_by_cause(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    run_iteration(service, owner, exp_id)
    run_iteration(service, owner, exp_id)
    second = service.views.results(owner, exp_id, 2, compare_with=1)
    first = service.views.results(owner, exp_id, 1)
    # The same transcripts replayed: the same causes, under the same keys, names and ids.
    assert [(c["key"], c["id"]) for c in second.failure_clusters] == [
        (c["key"], c["id"]) for c in first.failure_clusters
    ]
    rows = second.compare["clusters"]
    assert {r["key"] for r in rows} == {c["key"] for c in first.failure_clusters}
    assert {r["change"] for r in rows} == {"unchanged"}
    # Answers are remembered per stored text and query: a comparison stays out of the plain
    # answer, and each confidence has its own.
    plain = service.views.results(owner, exp_id, 2)
    assert plain.compare is None and "compare" not in document(plain)
    assert plain == second.model_copy(update={"compare": None})
    wider = service.views.results(owner, exp_id, 2, confidence=0.99)
    assert wider.confidence == 0.99 and wider.summary != plain.summary
    assert service.views.results(owner, exp_id, 2, compare_with=1) == second
    assert all(r["runs"] == r["previous_runs"] and r["delta"] == 0 for r in rows)


def test_racing_triggers_get_gapless_unique_numbers(service: Service, store_url: str) -> None:
    """Two services (as two processes would) trigger the same experiment at once, many times:
    optimistic concurrency on the experiment's stream makes every number unique and gapless."""
    owner, exp_id, _, _ = setup_replay(service)
    other = Service(Settings(database_url=store_url))
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            numbers = list(
                pool.map(
                    lambda i: (
                        (service if i % 2 else other).experiments.trigger(owner, exp_id).iteration
                    ),
                    range(12),
                )
            )
        assert sorted(numbers) == list(range(1, 13))
        service.projector.catch_up()
        assert service.views.experiment(owner, exp_id).iterations == 12
        assert [i.iteration for i in service.views.iterations(owner, exp_id).items] == list(
            range(1, 13)
        )
    finally:
        other.close()


def test_iterations_are_listed_with_their_own_run_counts_from_one_query(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    run_iteration(service, owner, exp_id)
    service.experiments.trigger(owner, exp_id)  # its runs stay queued
    expected = [service.views.iteration_status(owner, exp_id, n) for n in (1, 2)]
    assert expected[0].runs.queued == 0 and expected[1].runs.queued == expected[1].runs.total
    queries: list[str] = []
    read = service.database.read

    def counted(statement: str, parameters: Any = ()) -> Any:
        queries.append(statement)
        return read(statement, parameters)

    monkeypatch.setattr(service.database, "read", counted)
    assert service.views.iterations(owner, exp_id).items == expected
    (counting,) = [q for q in queries if "FROM v_runs" in q]  # one for every iteration
    assert counting.endswith("WHERE experiment_id = ? GROUP BY number, status")


def test_each_of_many_concurrent_creations_reads_its_own_write(
    service: Service, store_url: str
) -> None:
    """Creations from many threads of two services (two processes) at once, while iterations
    are triggered: each creator finds its experiment in the views the moment its command
    returns (read-your-writes, as a GET right after a 201), with the lists it was given, and in
    the list; the views built this way equal a rebuild from the log."""
    owner, exp_id, tasks, envs = setup_replay(service)
    other = Service(Settings(database_url=store_url))

    def create(i: int) -> str:
        creator = service if i % 2 else other
        if i % 5 == 0:
            creator.experiments.trigger(owner, exp_id)
        created = creator.experiments.create_experiment(owner, f"e{i}", tasks[:1], envs, 1)
        found = creator.views.experiment(owner, created.id)
        assert (found.name, found.task_ids, found.env_ids) == (f"e{i}", tasks[:1], envs)
        listed = creator.views.experiments(owner, 200, None).items
        assert created.id in {item.id for item in listed}
        return created.id

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            created = list(pool.map(create, range(40)))
        assert len(set(created)) == 40
        service.projector.catch_up()
        incremental = service.views.experiments(owner, 200, None)
        history = service.views.history(owner, exp_id)
        service.rebuild_projections()
        assert service.views.experiments(owner, 200, None) == incremental
        assert service.views.history(owner, exp_id) == history
    finally:
        other.close()


def test_two_triggers_at_the_same_instant_get_consecutive_numbers(
    service: Service, store_url: str
) -> None:
    """docs/spec.md §5: the same experiment triggered at the same instant from two services (two
    processes' worth of connections): one gets N, the other N + 1, never both N."""
    owner, exp_id, _, _ = setup_replay(service)
    other = Service(Settings(database_url=store_url))
    barrier = threading.Barrier(2)

    def trigger(svc: Service) -> int:
        barrier.wait()
        number: int = svc.experiments.trigger(owner, exp_id).iteration
        return number

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            for n in range(1, 10, 2):
                numbers = sorted(pool.map(trigger, (service, other)))
                assert numbers == [n, n + 1]
        other.projector.catch_up()
        statuses = other.views.iterations(owner, exp_id).items
        assert [(s.iteration, s.runs.total) for s in statuses] == [(n, 12) for n in range(1, 11)]
    finally:
        other.close()


def test_a_catch_up_reads_the_rows_its_events_change_ahead_in_one_query(tmp_path: Any) -> None:
    """Under the projector's lock, every read is a round trip on PostgreSQL that every command
    waits for: an experiment's or an iteration's row is read ahead with the batch's others,
    never alone (SQLite's statement trace shows what the shared code sends)."""
    svc = Service(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        owner, exp_id, _, _ = setup_replay(svc)
        statements: list[str] = []
        svc.database.connection().set_trace_callback(statements.append)  # type: ignore[attr-defined]
        svc.experiments.update_experiment(owner, exp_id, {"name": "Renamed"})
        status = svc.experiments.trigger(owner, exp_id)
        svc.experiments.cancel(owner, exp_id, status.iteration)
    finally:
        svc.close()
    reads = [s for s in statements if "FROM v_experiments WHERE stream" in s]
    reads += [s for s in statements if "FROM v_iterations WHERE stream" in s]
    # The rename and the trigger read the experiment's row; the cancel, the iteration's.
    assert len(reads) == 3
    assert all("WHERE stream IN (" in s for s in reads), reads


def test_a_catch_up_on_postgresql_waits_for_the_server_once_per_read_and_once_to_commit(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector's lock is held across these messages, and every one of them costs its
    holder the GIL: BEGIN, the lock and the position go together, then the events, then the
    rows they change, then every write with the COMMIT."""
    svc = Service(Settings(database_url=postgres_url))
    try:
        owner, exp_id, _, _ = setup_replay(svc)
        messages: list[str] = []
        send = pg_batch.BatchedConnection.send

        def counted(batch: pg_batch.BatchedConnection) -> None:
            messages.extend(text.split()[0] for text, _ in batch._pending[:1])
            send(batch)

        monkeypatch.setattr(pg_batch.BatchedConnection, "send", counted)
        svc.experiments.update_experiment(owner, exp_id, {"name": "Renamed"})
    finally:
        svc.close()
    assert messages == ["BEGIN", "SELECT", "SELECT", "UPDATE"]
