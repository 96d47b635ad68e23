"""A re-score's plan and its derivation from the source iteration (pure domain)."""

from __future__ import annotations

import pytest

from domain.errors import Conflict
from domain.iterations import Iteration, plan_rescore, plan_runs


def iteration(number: int, run_ids: list[str]) -> Iteration:
    runs = plan_runs(["t1", "t2"], ["e1"], 2, run_ids)
    return Iteration(
        experiment_id="exp_x",
        product_id="prd_x",
        number=number,
        signal_config=None,
        tasks={},
        environments={},
        runs=runs,
    )


def finished(number: int, run_ids: list[str]) -> Iteration:
    source = iteration(number, run_ids)
    source.complete()
    return source


def test_the_plan_mirrors_the_source_runs_with_new_ids() -> None:
    source = finished(1, ["r1", "r2", "r3", "r4"])
    plan = plan_rescore(source.runs, ["n1", "n2", "n3", "n4"])
    assert [(r.task_id, r.environment_id, r.repeat) for r in plan] == [
        (r.task_id, r.environment_id, r.repeat) for r in source.runs
    ]
    assert [r.run_id for r in plan] == ["n1", "n2", "n3", "n4"]
    with pytest.raises(ValueError, match="need 4 run ids, got 1"):
        plan_rescore(source.runs, ["n1"])


def test_a_rescore_maps_each_run_to_its_source_run() -> None:
    source = finished(1, ["r1", "r2", "r3", "r4"])
    plan = plan_rescore(source.runs, ["n1", "n2", "n3", "n4"])
    rescore = iteration(2, [r.run_id for r in plan])
    assert rescore.rescore_of is None
    rescore.derive_from(source)
    assert rescore.rescore_of == 1
    assert [rescore.source_run(r) for r in ("n1", "n4")] == ["r1", "r4"]
    events = rescore.collect_events()
    assert [type(e).__name__ for e in events] == ["ConfigFrozen", "RescoreOf"]
    # Replayed from its events, it is the same re-score.
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Iteration) and replayed.rescore_of == 1
    assert replayed.source_run("n2") == "r2"
    with pytest.raises(Conflict, match="already re-scores"):
        rescore.derive_from(source)


def test_a_running_source_cannot_be_rescored() -> None:
    running = iteration(1, ["r1", "r2", "r3", "r4"])
    rescore = iteration(2, ["n1", "n2", "n3", "n4"])
    with pytest.raises(Conflict, match="still running"):
        rescore.derive_from(running)
    assert rescore.rescore_of is None
