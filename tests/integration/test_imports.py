"""Recorded transcripts imported as an iteration (`ExperimentCommands.import_logs`), on each
store: the same transcripts run as a replay iteration and imported give equal results (summary,
signals, aggregates, clusters) with no agent run; bad input is a located 422 and records
nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.errors import InvalidInput, NotFound, TooManyRequests
from domain.imports import LogKeys, LogToImport
from infra.settings import Limits, Settings
from projections.read_models import document
from tests.conftest import FIXTURES
from tests.integration.test_service import (
    TASKS,
    run_iteration,
    setup_replay,
    transcript,
)
from tests.integration.test_stored_events_golden import insert_stored_events

ENVIRONMENTS = ("sonnet-docs", "gpt-nodocs")
REPEATS = 2


def execute_without_agents(service: Service, owner: str, exp_id: str, number: int) -> None:
    """Execute the iteration with no runner at all: a run that asked for one would be errored
    ("no runner for agent kind"), so equal outcomes prove that no agent ran."""

    async def go() -> None:
        executor = Executor(service.runs, {}, concurrency=4)
        await executor.submit(exp_id, number)
        await executor.drain()

    asyncio.run(go())


def replayed_logs() -> list[LogToImport]:
    """The transcripts the replay environments hold, keyed by task and environment name, in
    an order unlike a trigger's (environments first, repeats interleaved)."""
    logs = []
    for repeat in range(REPEATS):
        for label in reversed(ENVIRONMENTS):
            for name, stem in TASKS.items():
                logs.append(
                    LogToImport(
                        LogKeys(name, label),
                        transcript(f"{stem}__{label}"),
                        file=f"{label}/{stem}.json",
                        sample=str(repeat),
                    )
                )
    return logs


def by_place(service: Service, owner: str, exp_id: str, number: int) -> dict[str, str]:
    """run id -> "task/environment/repeat", to compare two iterations' documents."""
    rows = service.views.runs(owner, exp_id, number, None, 500, None).items
    return {r.id: f"{r.task_id}/{r.environment_id}/{r.repeat}" for r in rows}


def placed(value: Any, places: dict[str, str]) -> Any:
    """`value` with every run id replaced by its place."""
    if isinstance(value, dict):
        return {placed(k, places): placed(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [placed(item, places) for item in value]
    if isinstance(value, str):
        return places.get(value, value)
    return value


def comparable(service: Service, owner: str, exp_id: str, number: int) -> dict[str, Any]:
    places = by_place(service, owner, exp_id, number)
    results = service.views.results(owner, exp_id, number)
    signals = service.views.signals(owner, exp_id, number)
    runs = service.views.runs(owner, exp_id, number, None, 500, None).items
    documents = {
        "summary": results.summary,
        "failure_clusters": results.failure_clusters,
        "suggestions": results.suggestions,
        "aggregates": signals["aggregates"],
        "runs": sorted(
            (
                places[r.id],
                r.status,
                r.termination_reason,
                r.stats,
                r.error,
                r.signals,
                service.transcripts.transcript(owner, r.id),
            )
            for r in runs
        ),
    }
    comparable: dict[str, Any] = placed(documents, places)
    # Clusters list their runs in run id order, and run ids are random: order them by place.
    for cluster in comparable["failure_clusters"]:
        cluster["run_ids"].sort()
        cluster["evidence"].sort(key=lambda item: (item["run_id"], item["event"]))
    return comparable


def test_imported_transcripts_give_the_results_of_their_replay(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    assert run_iteration(service, owner, exp_id).status == "completed"

    started = service.experiments.import_logs(owner, exp_id, "tpc", replayed_logs())
    assert (started.iteration, started.status) == (2, "running")
    assert document(started)["imported"] == {"format": "tpc", "runs": 12, "files": 6}
    assert started.runs.total == 12
    execute_without_agents(service, owner, exp_id, 2)

    status = service.views.iteration_status(owner, exp_id, 2)
    assert status.status == "completed"
    assert status.runs == service.views.iteration_status(owner, exp_id, 1).runs
    replay, imported = comparable(service, owner, exp_id, 1), comparable(service, owner, exp_id, 2)
    assert imported["failure_clusters"], "the example has failing runs to cluster"
    assert imported == replay
    results = service.views.results(owner, exp_id, 2)
    assert document(results)["imported"] == {"format": "tpc", "runs": 12, "files": 6}
    assert service.views.results(owner, exp_id, 1).imported is None

    iteration = service.runs.load_iteration(exp_id, 2)
    assert iteration.imported_from == "tpc" and iteration.rescore_of is None
    # Each run says where its transcript was read; a run that was not imported does not.
    runs = service.views.runs(owner, exp_id, 2, None, 500, None).items
    names = {t["task_id"]: t["name"] for t in results.summary["tasks"]}
    for run in runs:
        assert run.source is not None
        file, sample = run.source.file, run.source.sample
        assert file.endswith(f"/{TASKS[names[run.task_id]]}.json")
        assert sample == str(run.repeat)
        assert service.views.run(owner, run.id).source == run.source
    replayed = service.views.runs(owner, exp_id, 1, None, 1, None).items[0]
    assert "source" not in document(replayed)
    assert "source" not in document(service.views.run(owner, replayed.id))
    history = service.views.history(owner, exp_id, 500, None).items
    assert any("imported from 12 recorded transcripts" in e.summary for e in history)

    # An imported iteration is re-scored like any other: the same outcomes again.
    rescored = service.experiments.rescore(owner, exp_id, 2)
    assert (rescored.rescore_of, rescored.imported) == (2, None)
    execute_without_agents(service, owner, exp_id, 3)
    assert comparable(service, owner, exp_id, 3) == imported


def test_an_import_names_only_the_tasks_and_environments_its_logs_name(service: Service) -> None:
    owner, exp_id, tasks, envs = setup_replay(service)
    logs = [LogToImport(LogKeys(tasks[1], "gpt-nodocs"), transcript("webhook__gpt-nodocs"))]
    service.experiments.import_logs(owner, exp_id, "openai-messages", logs)
    execute_without_agents(service, owner, exp_id, 1)
    results = service.views.results(owner, exp_id, 1)
    assert [t["task_id"] for t in results.summary["tasks"]] == [tasks[1]]
    assert [e["environment_id"] for e in results.summary["environments"]] == [envs[1]]
    assert document(results)["imported"] == {"format": "openai-messages", "runs": 1, "files": 1}


def recorded_nothing(service: Service, owner: str, exp_id: str) -> bool:
    return bool(service.views.experiment(owner, exp_id).iterations == 0)


def test_unknown_keys_are_named_and_nothing_is_recorded(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    logs = [
        LogToImport(LogKeys("install-sdk", "sonnet-docs"), transcript("install-sdk__sonnet-docs")),
        LogToImport(LogKeys("deploy", "sonnet-docs"), transcript("install-sdk__sonnet-docs")),
        LogToImport(LogKeys("deploy", "claude-9"), transcript("install-sdk__sonnet-docs")),
    ]
    with pytest.raises(InvalidInput) as refused:
        service.experiments.import_logs(owner, exp_id, "tpc", logs)
    message = str(refused.value)
    assert "unknown task keys 'deploy'" in message
    assert "unknown environment keys 'claude-9'" in message
    assert "install-sdk" in message  # the names it could have been
    assert [loc for loc, _ in refused.value.problems] == [
        "runs[1].task",
        "runs[2].task",
        "runs[2].environment",
    ]
    assert recorded_nothing(service, owner, exp_id)


def test_an_ambiguous_name_asks_for_the_id(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    twin = service.catalog.create_task(owner, {"name": "install-sdk", "prompt": "again"}).id
    service.experiments.attach(owner, exp_id, "task", twin)
    logs = [LogToImport(LogKeys("install-sdk", "sonnet-docs"), transcript("refund__gpt-nodocs"))]
    with pytest.raises(InvalidInput, match=r"names 2 tasks .*give the id"):
        service.experiments.import_logs(owner, exp_id, "tpc", logs)
    assert recorded_nothing(service, owner, exp_id)
    logs = [LogToImport(LogKeys(twin, "sonnet-docs"), transcript("refund__gpt-nodocs"))]
    assert service.experiments.import_logs(owner, exp_id, "tpc", logs).iteration == 1


def test_bad_transcripts_are_located_and_nothing_is_recorded(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    good = transcript("refund__gpt-nodocs")
    logs = [
        LogToImport(LogKeys("refund-payment", "gpt-nodocs"), good),
        LogToImport(LogKeys("refund-payment", "gpt-nodocs"), {"messages": "none"}),
        LogToImport(LogKeys("refund-payment", "gpt-nodocs"), {**good, "final_answer": "a\x00b"}),
    ]
    with pytest.raises(InvalidInput) as refused:
        service.experiments.import_logs(owner, exp_id, "tpc", logs)
    locations = [loc for loc, _ in refused.value.problems]
    assert locations[0].startswith("runs[1].transcript.messages")
    assert "runs[2].transcript.final_answer" in locations
    assert recorded_nothing(service, owner, exp_id)

    with pytest.raises(InvalidInput, match="nothing to import"):
        service.experiments.import_logs(owner, exp_id, "tpc", [])
    assert recorded_nothing(service, owner, exp_id)


def test_another_products_experiment_is_not_found(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    other = service.catalog.create_product("other")["product"]["id"]
    logs = [LogToImport(LogKeys("refund-payment", "gpt-nodocs"), transcript("refund__gpt-nodocs"))]
    with pytest.raises(NotFound):
        service.experiments.import_logs(other, exp_id, "tpc", logs)
    assert recorded_nothing(service, owner, exp_id)


def test_the_operators_limits_apply(service: Service, store_url: str) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    limited = Service(
        Settings(
            database_url=store_url,
            limits=Limits(max_runs_per_iteration=3, max_running_iterations=1),
        )
    )
    try:
        logs = replayed_logs()
        with pytest.raises(InvalidInput, match="TPC_MAX_RUNS_PER_ITERATION"):
            limited.experiments.import_logs(owner, exp_id, "tpc", logs[:4])
        limited.experiments.import_logs(owner, exp_id, "tpc", logs[:3])
        with pytest.raises(TooManyRequests, match="TPC_MAX_RUNNING_ITERATIONS"):
            limited.experiments.import_logs(owner, exp_id, "tpc", logs[:3])
        assert limited.views.experiment(owner, exp_id).iterations == 1
    finally:
        limited.close()


# An imported iteration's stream as stored (ConfigFrozen + Imported): it must keep loading.
IMPORT_GOLDEN: dict[str, Any] = json.loads((FIXTURES / "stored_events_import_v1.json").read_text())


def test_a_stored_import_still_loads(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        insert_stored_events(service, IMPORT_GOLDEN["events"])
        store = service.store
        notifications = list(store.notifications(0, 100))
        mapped = [store.mapper.to_domain_event(n) for n in notifications]
        assert [vars(store.to_event(n)) for n in notifications] == [vars(e) for e in mapped]
        exp_id, number = IMPORT_GOLDEN["experiment_id"], IMPORT_GOLDEN["number"]
        iteration = service.runs.load_iteration(exp_id, number)
        assert iteration.imported_from == IMPORT_GOLDEN["format"]
        assert [iteration.imported_transcript(r.run_id) for r in iteration.runs] == IMPORT_GOLDEN[
            "transcripts"
        ]
        service.projector.catch_up()
        row = service.database.read_one(
            "SELECT imported, import_sources FROM v_iterations"
            " WHERE experiment_id = ? AND number = ?",
            (exp_id, number),
        )
        assert row is not None
        assert json.loads(row["imported"]) == {"format": "inspect-log", "runs": 3, "files": 2}
        assert json.loads(row["import_sources"]) == {
            run_id: {"file": file, "sample": sample}
            for run_id, file, sample in IMPORT_GOLDEN["sources"]
        }
    finally:
        service.close()
