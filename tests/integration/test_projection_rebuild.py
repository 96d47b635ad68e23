"""A rebuild gives the views that following the log event by event gave, on a log where
iterations overlap, runs retry, record live messages, get cancelled or extracted late, and
one iteration is still running: the cases where the rebuild keeps rows in memory across its
batches, settles them, or has to fall back to writing them early."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from application.service import Service
from domain.clusters import RecordedCluster, RootCause, suggestions
from domain.definitions import EnvironmentDefinition, TaskDefinition
from domain.iterations import Iteration, PlannedRun
from domain.runs import RecordedStats, Run, signal_values_from_json
from domain.signals.extraction import SignalValue
from projections import follower
from tests.integration.test_store_contracts import dump_views

TASKS = {
    "task_a": TaskDefinition(name="alpha", prompt="Do alpha"),
    "task_b": TaskDefinition(name="beta", prompt="Do beta"),
}
ENVIRONMENTS = {
    "env_x": EnvironmentDefinition.model_validate({"name": "x", "agent": {"kind": "scripted"}})
}
STATS = RecordedStats.model_validate(
    {"turns": 3, "cost_usd": 0.0125, "tokens": {"input": 1200, "output": 80}}
)


class History:
    """Saves aggregates and catches the views up after every save, as a server does."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def save(self, *aggregates: Aggregate) -> None:
        self.service.store.save(*aggregates)
        self.service.projector.catch_up()

    def iteration(self, number: int, runs: int) -> tuple[Iteration, list[Run]]:
        planned = [
            PlannedRun(f"run_{number}_{i}", ("task_a", "task_b")[i % 2], "env_x", i // 2)
            for i in range(runs)
        ]
        iteration = Iteration(
            experiment_id="exp_rebuild",
            product_id="prd_rebuild",
            number=number,
            signal_config=None,
            tasks=TASKS,
            environments=ENVIRONMENTS,
            runs=planned,
        )
        self.save(iteration)
        return iteration, [
            Run(
                run_id=p.run_id,
                experiment_id="exp_rebuild",
                number=number,
                task_id=p.task_id,
                environment_id=p.environment_id,
                repeat=p.repeat,
            )
            for p in planned
        ]


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def signals(failed: bool) -> dict[str, SignalValue]:
    return signal_values_from_json(
        {
            "gave-up": {"value": failed, "evidence": [{"event": 1, "snippet": "I give up"}]},
            "turns": (
                {"value": None, "evidence": [], "error": "no match"}
                if failed
                else {"value": 3, "evidence": []}
            ),
        }
    )


def make_overlapping_history(service: Service) -> None:
    history = History(service)
    first, first_runs = history.iteration(1, 6)
    second, second_runs = history.iteration(2, 4)  # frozen while the first one runs
    for run in first_runs[:3] + second_runs[:2]:
        run.start()
        run.record_messages(0, [say("hello"), say("thinking")])
    history.save(*first_runs[:3], *second_runs[:2])
    # A retry: attempt 2 clears the first attempt's live messages.
    first_runs[0].start()
    first_runs[0].record_messages(0, [say("again")])
    history.save(first_runs[0])
    for i, run in enumerate(first_runs):
        if run.status == "queued":
            run.start()
        # A transcript supersedes the live messages; a run without one keeps them.
        ref = f"sha256:{i:064d}" if i % 3 else None
        run.complete("failed" if i % 2 else "passed", "done", STATS, ref, "boom" if i % 2 else None)
        run.record_signals("hash", signals(failed=bool(i % 2)))
    history.save(*first_runs[:4])
    second_runs[0].cancel()  # cancelled: its live messages stay
    history.save(*first_runs[4:], second_runs[0])
    boom = RecordedCluster("cl_boom", "boom", RootCause("agent", "boom"), "fix", ("r",) * 3, 3, ())
    first.record_clusters([boom], suggestions([boom]))
    first.complete()
    history.save(first)
    # A run event after its iteration completed updates the row written already.
    first_runs[5].record_signals("hash", signals(failed=False))
    history.save(first_runs[5])
    second.request_cancel()
    for run in second_runs[1:]:
        if run.status == "queued":
            run.start()
        run.cancel()
    history.save(second, *second_runs[1:])
    second.complete()
    _, third_runs = history.iteration(3, 2)  # still running when the log ends
    third_runs[0].start()
    third_runs[0].record_messages(0, [say("live")])
    history.save(second, third_runs[0])


def test_a_rebuild_gives_the_views_built_event_by_event(service: Service) -> None:
    make_overlapping_history(service)
    incremental = dump_views(service)
    assert service.rebuild_projections() == service.store.last_position()
    assert dump_views(service) == incremental


def test_a_rebuild_in_small_batches_that_overflow_its_memory_gives_the_same_views(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_overlapping_history(service)
    incremental = dump_views(service)
    for batch, open_rows in ((3, 4), (7, 100), (1, 0)):
        monkeypatch.setattr(follower, "REBUILD_BATCH", batch)
        monkeypatch.setattr(follower, "REBUILD_OPEN_ROWS", open_rows)
        assert service.rebuild_projections() == service.store.last_position()
        assert dump_views(service) == incremental, (batch, open_rows)
