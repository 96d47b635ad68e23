"""Re-scoring an iteration (`ExperimentCommands.rescore`) on each store: the next number, the
source's runs mirrored with their recorded outcomes, the new config's signals, the source
unchanged; a running source is a 409, an invalid config a located 422, and a trigger's limits
apply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.errors import Conflict, InvalidInput, TooManyRequests
from infra.runners.registry import build_runners
from infra.settings import Limits, Settings
from projections.read_models import IterationStatus
from tests.conftest import FIXTURES
from tests.integration.test_service import run_iteration, setup_replay
from tests.integration.test_stored_events_golden import insert_stored_events

NEW_CONFIG = """
version: 1
signals:
  - id: mentions-docs
    name: Mentions the docs
    type: boolean
    source: assistantText
    extract: {method: pattern, patterns: [{name: docs, regex: "(?i)docs?"}]}
aggregates:
  - {id: docs-rate, signal_id: mentions-docs, fn: rate, label: Runs mentioning the docs}
"""


def execute(service: Service, exp_id: str, number: int) -> IterationStatus:
    """Execute the iteration in process. A re-score gets no runner at all: a run that asked
    for one would be errored ("no runner for agent kind"), so equal statuses prove that no
    agent ran."""

    async def go() -> None:
        rescore = service.runs.load_iteration(exp_id, number).rescore_of is not None
        runners = {} if rescore else build_runners(service.blobs.get)
        executor = Executor(service.runs, runners, concurrency=4)
        await executor.submit(exp_id, number)
        await executor.drain()

    asyncio.run(go())
    return service.views.iteration_status(service_owner(service), exp_id, number)


def service_owner(service: Service) -> str:
    owner = service.catalog.product_for_token("secret-token")
    assert owner is not None
    return owner


def outcomes(service: Service, owner: str, exp_id: str, number: int) -> list[tuple[Any, ...]]:
    """Each run's (task, environment, status, termination reason, stats, transcript)."""
    rows = service.views.runs(owner, exp_id, number, None, 100, None).items
    return [
        (
            row.task_id,
            row.environment_id,
            row.status,
            row.termination_reason,
            row.stats,
            service.views.transcript_ref(owner, row.id) if row.status != "cancelled" else None,
        )
        for row in rows
    ]


def test_a_rescore_is_the_next_iteration_with_the_new_config(service: Service) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    service.experiments.trigger(owner, exp_id)
    with pytest.raises(Conflict, match="still running"):
        service.experiments.rescore(owner, exp_id, 1, NEW_CONFIG)
    assert service.views.experiment(owner, exp_id).iterations == 1  # nothing saved
    assert execute(service, exp_id, 1).status == "completed"
    source_signals = service.views.signals(owner, exp_id, 1)
    experiment = service.views.experiment(owner, exp_id)

    with pytest.raises(InvalidInput) as refused:
        service.experiments.rescore(owner, exp_id, 1, NEW_CONFIG.replace("docs-rate", "Docs Rate"))
    assert [loc for loc, _ in refused.value.problems] == ["aggregates[0].id"]

    started = service.experiments.rescore(owner, exp_id, 1, NEW_CONFIG)
    assert (started.iteration, started.rescore_of, started.status) == (2, 1, "running")
    assert started.runs.total == 12
    finished = execute(service, exp_id, 2)
    assert finished.status == "completed" and finished.rescore_of == 1
    assert finished.runs == service.views.iteration_status(owner, exp_id, 1).runs
    assert outcomes(service, owner, exp_id, 2) == outcomes(service, owner, exp_id, 1)

    signals = service.views.signals(owner, exp_id, 2)
    assert [a["id"] for a in signals["aggregates"]] == ["docs-rate"]
    assert all(set(run["signals"]) == {"mentions-docs"} for run in signals["runs"])
    assert signals["aggregates"][0]["n"] == 12
    # The source and the experiment are as they were.
    assert service.views.signals(owner, exp_id, 1) == source_signals
    assert service.views.experiment(owner, exp_id).signal_config == experiment.signal_config

    iteration = service.runs.load_iteration(exp_id, 2)
    source = service.runs.load_iteration(exp_id, 1)
    assert iteration.rescore_of == 1 and source.rescore_of is None
    assert [iteration.source_run(run.run_id) for run in iteration.runs] == [
        run.run_id for run in source.runs
    ]
    assert service.views.results(owner, exp_id, 2).rescore_of == 1

    # Without a config: the experiment's current one. The experiment's tasks and environments
    # may have changed since: a re-score runs its source's.
    for task_id in service.views.experiment(owner, exp_id).task_ids:
        service.experiments.detach(owner, exp_id, "task", task_id)
    again = service.experiments.rescore(owner, exp_id, 2)
    assert again.config_hash == (experiment.signal_config and experiment.signal_config.hash)
    assert again.runs.total == 12
    assert again.rescore_of == 2
    history = service.views.history(owner, exp_id, 1000, None).items
    summaries = [e.summary for e in history if e.type == "Iteration.RescoreOf"]
    assert [text.split(":")[0] for text in summaries] == [
        "iteration 2 is a re-score of iteration 1",
        "iteration 3 is a re-score of iteration 2",
    ]


def test_runs_without_a_transcript_keep_their_status_and_get_no_signals(
    service: Service,
) -> None:
    owner, exp_id, _, _ = setup_replay(service)
    service.experiments.trigger(owner, exp_id)
    service.experiments.cancel(owner, exp_id, 1)
    cancelled = execute(service, exp_id, 1)
    assert cancelled.status == "cancelled" and cancelled.runs.cancelled == 12

    service.experiments.rescore(owner, exp_id, 1, NEW_CONFIG)
    status = execute(service, exp_id, 2)
    assert status.status == "completed"
    assert status.runs.cancelled == 12
    signals = service.views.signals(owner, exp_id, 2)
    assert all(run["signals"] == {} for run in signals["runs"])
    assert (signals["aggregates"][0]["n"], signals["aggregates"][0]["missing"]) == (0, 12)


def test_the_limits_of_a_trigger_apply(store_url: str) -> None:
    strict = Service(
        Settings(
            database_url=store_url,
            limits=Limits(max_running_iterations=1),
        )
    )
    try:
        owner, exp_id, _, _ = setup_replay(strict)
        run_iteration(strict, owner, exp_id)
        strict.experiments.trigger(owner, exp_id)  # iteration 2 stays running: the one allowed
        with pytest.raises(TooManyRequests, match="TPC_MAX_RUNNING_ITERATIONS"):
            strict.experiments.rescore(owner, exp_id, 1)
        assert strict.views.experiment(owner, exp_id).iterations == 2
    finally:
        strict.close()
    # An operator who lowered the runs limit below the source's size.
    smaller = Service(Settings(database_url=store_url, limits=Limits(max_runs_per_iteration=4)))
    try:
        owner = service_owner(smaller)
        with pytest.raises(InvalidInput, match="TPC_MAX_RUNS_PER_ITERATION"):
            smaller.experiments.rescore(owner, exp_id, 1)
    finally:
        smaller.close()


# A re-score's iteration stream as stored (ConfigFrozen + RescoreOf): it must keep loading.
RESCORE_GOLDEN: dict[str, Any] = json.loads(
    (FIXTURES / "stored_events_rescore_v1.json").read_text()
)


def test_a_stored_rescore_still_loads(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        insert_stored_events(service, RESCORE_GOLDEN["events"])
        store = service.store
        notifications = list(store.notifications(0, 100))
        mapped = [store.mapper.to_domain_event(n) for n in notifications]
        assert [vars(store.to_event(n)) for n in notifications] == [vars(e) for e in mapped]
        exp_id, number = RESCORE_GOLDEN["experiment_id"], RESCORE_GOLDEN["number"]
        iteration = service.runs.load_iteration(exp_id, number)
        assert iteration.rescore_of == RESCORE_GOLDEN["rescore_of"]
        assert [iteration.source_run(run.run_id) for run in iteration.runs] == RESCORE_GOLDEN[
            "source_runs"
        ]
        service.projector.catch_up()
        row = service.database.read_one(
            "SELECT rescore_of FROM v_iterations WHERE experiment_id = ? AND number = ?",
            (exp_id, number),
        )
        assert row is not None and row[0] == RESCORE_GOLDEN["rescore_of"]
    finally:
        service.close()
