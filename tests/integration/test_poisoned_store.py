"""Issue 11 item 3 on each store: text a store cannot hold (a NUL character, a lone surrogate) is
refused before anything is saved; agent output holding it is cleaned; and an event the views
cannot apply (written by an older version, around today's guard) is recorded and skipped, so
it never stalls every tenant's views nor stops the store from opening."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.catalog import Product, Task
from domain.definitions import EnvironmentDefinition, TaskDefinition
from domain.errors import InvalidInput
from domain.ids import stream_id
from domain.iterations import Iteration, PlannedRun
from domain.runs import RecordedStats, Run
from domain.transcripts import transcript_from_object
from infra.runners.base import RunnerError, RunOutcome, RunRequest
from infra.settings import Settings
from projections import follower
from projections.views import VIEW_TABLES
from tests.conftest import store_kind
from tests.poisoned import save_around_the_guard

UNSTORABLE = {"nul": "a\x00b", "surrogate": "a\ud800b"}


def unapplicable_texts(store_url: str) -> list[str]:
    """Texts the views of this store cannot hold: SQLite keeps a NUL, PostgreSQL does not."""
    if store_kind(store_url) == "postgresql":
        return list(UNSTORABLE.values())
    return [UNSTORABLE["surrogate"]]


def dump_views(service: Service) -> dict[str, list[tuple[Any, ...]]]:
    """Every view row, in a stable order, without `seq`: on PostgreSQL an identity value taken
    by an event that then failed is not given back, so after a failure a rebuild may number
    rows differently (in the same order)."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in VIEW_TABLES:
        rows = service.database.read(f"SELECT * FROM {table}")
        tables[table] = sorted(
            (tuple(v for k, v in zip(row.keys(), row, strict=True) if k != "seq") for row in rows),
            key=repr,
        )
    tables["tracking"] = [tuple(r) for r in service.database.read("SELECT * FROM tracking")]
    return tables


def owner_of(service: Service) -> str:
    boot = service.catalog.bootstrap("poison-token")
    assert boot is not None
    return boot.product_id


def task_names(service: Service, owner: str) -> list[str]:
    return [task.name for task in service.views.tasks(owner).items]


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_a_save_holding_unstorable_text_is_refused_whole_and_located(
    service: Service, text: str
) -> None:
    before = service.store.last_position()
    product = Product(public_id="prd_fine", name="fine", token_hash="hash")
    task = Task(
        public_id="task_bad",
        product_id="prd_fine",
        definition={"name": text, "prompt": "p", "tags": {"k": ["ok", text]}},
    )
    with pytest.raises(InvalidInput) as refused:
        service.store.save(product, task)
    assert [loc for loc, _ in refused.value.problems] == ["definition.name", "definition.tags.k[1]"]
    assert "cannot be stored" in str(refused.value)
    # Nothing of the save landed, not even the product that was fine.
    assert service.store.last_position() == before
    assert not service.store.exists(product.id)
    assert not service.store.exists(task.id)


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_a_command_with_unstorable_text_is_refused_and_the_next_one_works(
    service: Service, text: str
) -> None:
    owner = owner_of(service)
    head = service.store.last_position()
    with pytest.raises(InvalidInput) as refused:
        service.catalog.create_task(owner, {"name": text, "prompt": "p"})
    assert refused.value.problems[0][0] == "definition.name"
    assert service.store.last_position() == head
    created = service.catalog.create_task(owner, {"name": "fine", "prompt": "p"})
    assert service.views.task(owner, created.id).name == "fine"
    assert task_names(service, owner) == ["fine"]
    assert service.projector.status()["failures"] == []


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_uploaded_replay_transcripts_are_a_request_refused_with_their_location(
    service: Service, text: str
) -> None:
    owner = owner_of(service)
    good = {"messages": [{"role": "assistant", "content": "fine"}]}
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": text}]}
    blobs = service.database.read("SELECT count(*) FROM blobs")[0][0]
    with pytest.raises(InvalidInput) as refused:
        service.catalog.create_environment(
            owner,
            {"name": "replayed", "agent": {"kind": "replay", "transcripts": {"t": [good, bad]}}},
        )
    [(loc, _)] = refused.value.problems
    assert loc == "agent.transcripts.t[1].messages[1].content"
    # Refused before any transcript was stored, the good one included.
    assert service.database.read("SELECT count(*) FROM blobs")[0][0] == blobs


def test_the_views_record_and_skip_an_event_they_cannot_apply(
    service: Service, store_url: str
) -> None:
    owner = owner_of(service)
    service.catalog.create_task(owner, {"name": "before", "prompt": "p"})
    bad_positions = []
    for i, text in enumerate(unapplicable_texts(store_url)):
        bad = Task(public_id=f"task_bad{i}", product_id=owner, definition={"name": text})
        bad_positions += save_around_the_guard(service.store, bad)
    # The next command saves and reads its own write: the bad events do not stall it.
    service.catalog.create_task(owner, {"name": "after", "prompt": "p"})
    assert task_names(service, owner) == ["before", "after"]

    status = service.projector.status()
    head = service.store.last_position()
    assert (status["position"], status["head"], status["lag"]) == (head, head, 0)
    failures = status["failures"]
    assert [(f["position"], f["topic"]) for f in failures] == [
        (position, "tpc:Task.Created") for position in bad_positions
    ]
    assert all(f["error"] and f["recorded_at"] for f in failures)

    # A rebuild retries every event, records again what still fails, and gives the same views.
    incremental = dump_views(service)
    assert service.projector.rebuild() == head
    assert dump_views(service) == incremental
    again = service.projector.status()["failures"]
    assert [(f["position"], f["topic"], f["error"]) for f in again] == [
        (f["position"], f["topic"], f["error"]) for f in failures
    ]


def test_a_bad_run_event_is_skipped_alone_from_a_batch_of_run_events(
    service: Service, store_url: str
) -> None:
    text = unapplicable_texts(store_url)[0]
    planned = [PlannedRun(f"run_{i}", "task_a", "env_x", i) for i in range(3)]
    iteration = Iteration(
        experiment_id="exp_poison",
        product_id="prd_poison",
        number=1,
        signal_config=None,
        tasks={"task_a": TaskDefinition(name="a", prompt="Do a")},
        environments={
            "env_x": EnvironmentDefinition.model_validate(
                {"name": "x", "agent": {"kind": "scripted"}}
            )
        },
        runs=planned,
    )
    service.store.save(iteration)
    bad_position = 0
    for p in planned:
        run = Run(
            run_id=p.run_id,
            experiment_id="exp_poison",
            number=1,
            task_id=p.task_id,
            environment_id=p.environment_id,
            repeat=p.repeat,
        )
        run.start()
        service.store.save(run)
        if p.run_id == "run_1":
            # As an older version recorded an agent's error, uncleaned.
            run._completed("errored", "error", RecordedStats(turns=1), None, f"agent said {text}")
            [bad_position] = save_around_the_guard(service.store, run)
        else:
            run.complete("passed", "completed", RecordedStats(turns=1), None)
            service.store.save(run)
    # Every event above waits for one catch-up: one batch, the bad event in its middle.
    service.projector.catch_up()
    runs = service.database.read("SELECT id, status FROM v_runs WHERE experiment_id = 'exp_poison'")
    assert {run["id"]: run["status"] for run in runs} == {
        "run_0": "passed",
        "run_1": "running",
        "run_2": "passed",
    }
    failures = service.projector.status()["failures"]
    assert [(f["position"], f["topic"]) for f in failures] == [(bad_position, "tpc:Run.Completed")]
    incremental = dump_views(service)
    service.projector.rebuild()
    assert dump_views(service) == incremental


def test_a_store_poisoned_by_an_older_version_opens_and_rebuilds(store_url: str) -> None:
    settings = Settings(database_url=store_url)
    service = Service(settings)
    owner = owner_of(service)
    text = unapplicable_texts(store_url)[0]
    [bad] = save_around_the_guard(
        service.store, Task(public_id="task_bad", product_id=owner, definition={"name": text})
    )
    service.close()

    # Opening catches the views up past the bad event; so does opening after a views change.
    reopened = Service(settings)
    try:
        assert [f["position"] for f in reopened.projector.status()["failures"]] == [bad]
        created = reopened.catalog.create_task(owner, {"name": "after", "prompt": "p"})
        assert reopened.views.task(owner, created.id).name == "after"
        with reopened.database.write() as db:
            db.execute("UPDATE tracking SET position = 1 WHERE name = ?", (follower.SCHEMA_MARK,))
    finally:
        reopened.close()
    rebuilt = Service(settings)
    try:
        assert rebuilt.projector.rebuilt_on_start
        status = rebuilt.projector.status()
        assert [f["position"] for f in status["failures"]] == [bad]
        assert status["position"] == rebuilt.store.last_position()
        assert task_names(rebuilt, owner) == ["after"]
    finally:
        rebuilt.close()


class PrintsUnstorableText:
    """An agent whose output holds a NUL and a lone surrogate: in its live messages, its
    transcript and its stats on the first repeat, in its error on the second."""

    async def run(self, request: RunRequest) -> RunOutcome:
        said = {"role": "assistant", "content": "out\x00put \ud800 here"}
        request.progress.message({"role": "user", "content": request.task["prompt"]})
        request.progress.message(said)
        await asyncio.sleep(0.8)  # the live log's writer saves meanwhile
        if request.repeat == 1:
            raise RunnerError("the agent crashed: \ud800\x00")
        transcript = transcript_from_object(
            {
                "messages": [{"role": "user", "content": request.task["prompt"]}, said],
                "stats": {"model": "m\x00odel"},
                "final_answer": "done\x00",
            }
        )
        return RunOutcome(transcript, "failed", "completed")


def test_what_an_agent_prints_is_cleaned_and_its_runs_are_recorded(service: Service) -> None:
    owner = owner_of(service)
    task = service.catalog.create_task(owner, {"name": "t", "prompt": "p"}).id
    env = service.catalog.create_environment(
        owner, {"name": "dirty", "agent": {"kind": "scripted"}}
    ).id
    exp = service.experiments.create_experiment(owner, "dirty output", [task], [env], 2).id
    number = service.experiments.trigger(owner, exp).iteration

    async def execute() -> None:
        executor = Executor(service.runs, {"scripted": PrintsUnstorableText()}, 2)
        await executor.submit(exp, number)
        await executor.drain()

    asyncio.run(execute())
    assert service.views.iteration_status(owner, exp, number).status == "completed"
    runs = {run.repeat: run for run in service.views.runs(owner, exp, number).items}
    assert runs[0].status == "failed"
    assert runs[1].status == "errored"
    assert runs[1].error == "the agent crashed: \ufffd\ufffd"
    transcript = service.transcripts.transcript(owner, runs[0].id)
    assert transcript["messages"][1]["content"][0]["text"] == "out\ufffdput \ufffd here"
    assert transcript["final_answer"] == "done\ufffd"
    assert transcript["stats"]["model"] == "m\ufffdodel"
    # The live messages were saved too, cleaned (events of the run's stream).
    live = [
        message
        for event in service.store.events.get(stream_id(runs[1].id))
        if isinstance(event, Run.MessagesRecorded)
        for message in event.messages
    ]
    assert {"role": "assistant", "content": "out\ufffdput \ufffd here"} in live
    assert service.projector.status()["failures"] == []
