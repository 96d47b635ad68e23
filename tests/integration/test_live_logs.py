"""Live run logs on each store: `Run.MessagesRecorded` folded into the live-message view, read
through `TranscriptReads.run_logs` (the `GET /v1/runs/{id}/logs` answer), superseded by the stored
transcript, started afresh by a new attempt; and the scripted runner reporting its story."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from application.executor import Executor
from application.service import Service
from domain.errors import NotFound
from domain.iterations import Iteration
from domain.runs import RecordedStats
from domain.transcripts import transcript_from_object
from infra.runners.base import RunRequest
from infra.runners.scripted import ScriptedRunner
from projections.read_models import document
from tests.integration.test_store_contracts import dump_views


def say(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": text}


def setup(service: Service, repeats: int = 2) -> tuple[str, str, Iteration]:
    boot = service.catalog.bootstrap("live-token")
    assert boot is not None
    owner = boot.product_id
    task = service.catalog.create_task(owner, {"name": "Live", "prompt": "Do it"}).id
    env = service.catalog.create_environment(
        owner, {"name": "scripted", "agent": {"kind": "scripted"}}
    )
    exp = service.experiments.create_experiment(owner, "live", [task], [env.id], repeats).id
    service.experiments.trigger(owner, exp)
    return owner, exp, service.runs.load_iteration(exp, 1)


def transcript_bytes(messages: list[dict[str, Any]]) -> bytes:
    return json.dumps({"version": 1, "messages": messages}).encode()


def live_rows(service: Service, run_id: str) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in service.database.read(
            "SELECT attempt, idx FROM v_live_messages WHERE run_id = ? ORDER BY idx", (run_id,)
        )
    ]


def test_live_messages_are_followed_then_superseded_by_the_transcript(service: Service) -> None:
    owner, exp, iteration = setup(service)
    run_id = iteration.runs[0].run_id
    queued = service.transcripts.run_logs(owner, run_id)
    assert document(queued) == {
        "run_id": run_id,
        "status": "queued",
        "attempt": 0,
        "messages": [],
        "next": 0,
        "done": False,
    }

    run = service.runs.start_run(iteration, run_id)
    assert (
        service.runs.record_live_messages([(run, 0, [say("system", "sys"), say("user", "Do it")])])
        == []
    )
    assert service.runs.record_live_messages([(run, 2, [say("assistant", "working")])]) == []
    service.projector.catch_up()  # the executor's saves leave it to the log follower
    live = service.transcripts.run_logs(owner, run_id)
    assert (live.status, live.attempt, live.next, live.done) == ("running", 1, 3, False)
    assert live.messages == [
        {"index": 0, "role": "system", "content": "sys"},
        {"index": 1, "role": "user", "content": "Do it"},
        {"index": 2, "role": "assistant", "content": "working"},
    ]
    later = service.transcripts.run_logs(owner, run_id, after=2)
    assert ([m["index"] for m in later.messages], later.next) == ([2], 3)
    assert service.transcripts.run_logs(owner, run_id, after=3).messages == []
    assert service.transcripts.run_logs(owner, run_id, after=3).next == 3
    with pytest.raises(NotFound):
        service.transcripts.run_logs("prd_other", run_id)

    # The process died; attempt 2 starts its log afresh, and attempt 1 can save no more. In a
    # batch with another run's, only the stale attempt's messages are refused.
    retried = service.runs.start_run(iteration, run_id)
    other = iteration.runs[1].run_id
    cancelled = service.runs.start_run(iteration, other)
    stale = (run, 3, [say("assistant", "too late")])
    assert service.runs.record_live_messages([stale, (cancelled, 0, [say("system", "sys")])]) == [
        run
    ]
    service.projector.catch_up()
    assert service.transcripts.run_logs(owner, run_id, after=3).attempt == 2
    assert service.transcripts.run_logs(owner, run_id).messages == []
    assert [m["content"] for m in service.transcripts.run_logs(owner, other).messages] == ["sys"]
    service.runs.record_live_messages([(retried, 0, [say("system", "sys"), say("user", "Do it")])])
    service.projector.catch_up()
    assert live_rows(service, run_id) == [(2, 0), (2, 1)]

    final = [say("system", "sys"), say("user", "Do it"), say("assistant", "done")]
    service.runs.finish_run(
        retried, "passed", "completed", RecordedStats(), transcript_bytes(final), None, None
    )
    service.projector.catch_up()
    assert live_rows(service, run_id) == []  # the transcript supersedes them
    rest = service.transcripts.run_logs(owner, run_id, after=2)
    assert document(rest) == {
        "run_id": run_id,
        "status": "passed",
        "attempt": 2,
        "messages": [{"index": 2, "role": "assistant", "content": "done"}],
        "next": 3,
        "done": True,
    }
    whole = service.transcripts.run_logs(owner, run_id)
    assert [m["content"] for m in whole.messages] == ["sys", "Do it", "done"]
    assert service.transcripts.run_logs(owner, run_id, after=9).done is True

    # A cancelled run has no transcript: what it recorded live is what remains, and stays.
    service.runs.cancel_run(iteration, other)
    service.projector.catch_up()
    gone = service.transcripts.run_logs(owner, other)
    assert (gone.status, gone.messages, gone.done) == (
        "cancelled",
        [{"index": 0, "role": "system", "content": "sys"}],
        True,
    )

    # Live messages are not history; the views rebuild to the same rows (in one batch, the
    # clearing by a new attempt or a transcript happens before any row is written).
    history = service.views.history(owner, exp).items
    assert not any(item.type == "Run.MessagesRecorded" for item in history)
    before = dump_views(service)
    assert before["v_live_messages"]
    service.rebuild_projections()
    assert dump_views(service) == before


def test_the_scripted_runner_reports_its_transcript_as_it_goes() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.messages: list[dict[str, Any]] = []

        def message(self, message: dict[str, Any]) -> None:
            self.messages.append(message)

    def request(repeat: int, progress: Recorder | None) -> RunRequest:
        extra = {"progress": progress} if progress else {}
        return RunRequest(
            run_id="run_x",
            task_id="task_x",
            environment_id="env_x",
            repeat=repeat,
            attempt=1,
            task={"name": "Refund a payment", "prompt": "Refund it"},
            environment={"name": "scripted", "agent": {"kind": "scripted", "skill": 0.5}},
            **extra,
        )

    for repeat in range(6):
        recorder = Recorder()
        runner = ScriptedRunner()
        followed = asyncio.run(runner.run(request(repeat, recorder)))
        alone = asyncio.run(runner.run(request(repeat, None)))
        reported = transcript_from_object({"messages": recorder.messages}, "reported")
        assert reported.messages == followed.transcript.messages, repeat
        # Reporting changes nothing in the transcript but the clock.
        assert followed.transcript.messages == alone.transcript.messages


def test_a_slow_scripted_run_is_recorded_live_by_the_executor(service: Service) -> None:
    boot = service.catalog.bootstrap(None)
    assert boot is not None
    owner = boot.product_id
    task = service.catalog.create_task(owner, {"name": "Slow", "prompt": "Take your time"}).id
    env = service.catalog.create_environment(
        owner, {"name": "slow", "agent": {"kind": "scripted", "skill": 1, "step_latency_s": 0.1}}
    ).id
    exp = service.experiments.create_experiment(owner, "slow", [task], [env], 1).id
    status = service.experiments.trigger(owner, exp)

    async def execute() -> None:
        executor = Executor(service.runs, {"scripted": ScriptedRunner()}, 1)
        await executor.submit(exp, status.iteration)
        await executor.drain()

    asyncio.run(execute())
    service.projector.catch_up()
    run_id = service.views.runs(owner, exp, 1).items[0].id
    recorded = service.database.read(
        "SELECT COUNT(*) FROM " + service.store.events_table + " WHERE topic = ?",
        ("tpc:Run.MessagesRecorded",),
    )
    assert recorded[0][0] >= 1
    logs = service.transcripts.run_logs(owner, run_id)
    transcript = service.transcripts.transcript(owner, run_id)
    assert logs.done is True and logs.status == "passed"
    assert [{k: v for k, v in m.items() if k != "index"} for m in logs.messages] == transcript[
        "messages"
    ]
    assert live_rows(service, run_id) == []


def test_a_run_cut_off_by_its_time_limit_keeps_what_it_reported(service: Service) -> None:
    boot = service.catalog.bootstrap(None)
    assert boot is not None
    owner = boot.product_id
    task = service.catalog.create_task(owner, {"name": "Slow", "prompt": "Take your time"}).id
    agent = {"kind": "scripted", "skill": 1, "step_latency_s": 0.3}
    env = service.catalog.create_environment(
        owner, {"name": "too slow", "agent": agent, "limits": {"timeout_s": 0.8}}
    ).id
    exp = service.experiments.create_experiment(owner, "cut off", [task], [env], 1).id
    status = service.experiments.trigger(owner, exp)

    async def execute() -> None:
        executor = Executor(service.runs, {"scripted": ScriptedRunner()}, 1)
        await executor.submit(exp, status.iteration)
        await executor.drain()

    asyncio.run(execute())
    service.projector.catch_up()
    run = service.views.runs(owner, exp, 1).items[0]
    assert run.status == "timed_out"
    transcript = service.transcripts.transcript(owner, run.id)
    # More than the instruction: the steps the agent took before the limit, as reported live.
    assert len(transcript["messages"]) > 2
    assert "scripted agent" in json.dumps(transcript["messages"][0])
    assert transcript["termination_reason"] == "timeout"
    assert "time limit of 0.8 s" in transcript["final_answer"]
