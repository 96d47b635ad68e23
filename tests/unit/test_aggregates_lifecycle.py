"""The event-sourced aggregates' rules: experiments, iterations and runs."""

from __future__ import annotations

import pytest

from domain.errors import Conflict, InvalidInput
from domain.experiments import Experiment
from domain.iterations import Iteration, PlannedRun, plan_runs
from domain.runs import RecordedStats, Run


def experiment() -> Experiment:
    return Experiment(public_id="exp_aaaa", product_id="prd_aaaa", name="E", repeats=2)


def test_a_trigger_needs_tasks_and_environments() -> None:
    e = experiment()
    with pytest.raises(Conflict, match="has no tasks"):
        e.start_iteration()
    e.attach_task("task_aaaa")
    with pytest.raises(Conflict, match="has no environments"):
        e.start_iteration()
    e.attach_environment("env_aaaa")
    assert [e.start_iteration(), e.start_iteration()] == [1, 2]


def test_attach_twice_and_detach_unknown_conflict() -> None:
    e = experiment()
    e.attach_task("task_aaaa")
    with pytest.raises(Conflict, match="already attached"):
        e.attach_task("task_aaaa")
    with pytest.raises(Conflict, match="is not attached"):
        e.detach_environment("env_aaaa")
    e.detach_task("task_aaaa")
    assert e.task_ids == []


def test_unchanged_config_records_no_event() -> None:
    e = experiment()
    e.set_signal_config("version: 1", "sha256:1")
    before = e.version
    e.set_signal_config("version: 1", "sha256:1")
    e.clear_signal_config()
    e.clear_signal_config()
    assert e.version == before + 1
    assert e.config_hash is None


def test_runs_are_planned_tasks_by_environments_by_repeats() -> None:
    runs = plan_runs(["t1", "t2"], ["e1"], 2, ["r1", "r2", "r3", "r4"])
    assert runs == [
        PlannedRun("r1", "t1", "e1", 0),
        PlannedRun("r2", "t1", "e1", 1),
        PlannedRun("r3", "t2", "e1", 0),
        PlannedRun("r4", "t2", "e1", 1),
    ]
    assert PlannedRun.from_json(runs[0].to_json()) == runs[0]
    with pytest.raises(ValueError, match="need 4 run ids"):
        plan_runs(["t1", "t2"], ["e1"], 2, ["r1"])


def iteration() -> Iteration:
    return Iteration(
        experiment_id="exp_aaaa",
        product_id="prd_aaaa",
        number=1,
        signal_config=None,
        tasks={},
        environments={},
        runs=[PlannedRun("run_aaaa", "t", "e", 0)],
    )


def test_a_completed_iteration_accepts_no_further_change() -> None:
    it = iteration()
    it.complete()
    assert it.status == "completed"
    with pytest.raises(Conflict, match="is completed and accepts no further change"):
        it.request_cancel()
    with pytest.raises(Conflict):
        it.complete()


def test_a_cancelled_iteration_completes_as_cancelled() -> None:
    it = iteration()
    it.request_cancel()
    it.request_cancel()  # asking twice changes nothing
    it.complete()
    assert it.status == "cancelled"
    assert [type(e).__name__ for e in it.collect_events()] == [
        "ConfigFrozen",
        "CancelRequested",
        "Completed",
    ]


def run() -> Run:
    return Run(
        run_id="run_aaaa",
        experiment_id="exp_aaaa",
        number=1,
        task_id="t",
        environment_id="e",
        repeat=0,
    )


def test_a_run_is_retried_as_a_new_attempt_and_completed_once() -> None:
    r = run()
    assert r.start() == 1
    assert r.start() == 2  # the process died mid-run: the next one retries
    r.complete("passed", "completed", RecordedStats(), "sha256:x")
    with pytest.raises(Conflict, match="already passed"):
        r.complete("failed", "completed", RecordedStats(), None)
    with pytest.raises(Conflict):
        r.start()
    with pytest.raises(Conflict):
        r.cancel()


def test_a_run_rejects_a_non_terminal_outcome() -> None:
    r = run()
    r.start()
    with pytest.raises(ValueError, match="not a terminal status"):
        r.complete("running", None, RecordedStats(), None)


@pytest.mark.parametrize(
    ("name", "repeats", "loc"),
    [
        ("", 1, "name"),
        ("  ", 1, "name"),
        ("n" * 201, 1, "name"),
        ("ok", 0, "repeats"),
        ("ok", -5, "repeats"),
        ("ok", 1001, "repeats"),
        ("ok", True, "repeats"),
    ],
)
def test_create_and_change_obey_the_same_rules(name: str, repeats: int, loc: str) -> None:
    with pytest.raises(InvalidInput) as created:
        Experiment.new(public_id="exp_bbbb", product_id="prd_aaaa", name=name, repeats=repeats)
    assert created.value.problems[0][0] == loc
    e = experiment()
    with pytest.raises(InvalidInput) as changed:
        e.rename(name) if loc == "name" else e.change_repeats(repeats)
    assert changed.value.problems == created.value.problems
    assert (e.name, e.repeats, e.version) == ("E", 2, 1)


def test_names_and_repeats_at_the_limits_are_accepted() -> None:
    e = Experiment.new(public_id="exp_bbbb", product_id="prd_aaaa", name="n" * 200, repeats=1)
    e.change_repeats(1000)
    e.rename("x")
    assert (e.name, e.repeats) == ("x", 1000)
