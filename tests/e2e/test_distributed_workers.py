"""The fault test of the distributed setup (issue 4): `tpc serve --no-workers` and three
`tpc worker` processes on one PostgreSQL database; one worker is killed with SIGKILL and another
stopped with SIGTERM mid-iteration. The iteration still completes, every run has exactly one
`Run.Completed`, and the results equal those of the same iteration on SQLite."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import TPC, Server, as_json
from tests.eventually import eventually

TASKS = ("install the sdk", "create a customer", "set up webhooks", "refund a payment")
REPEATS = 50  # 4 tasks x 1 environment x 50 = 200 runs
# Runs of about a second: whenever a worker is killed, some of its runs are mid-flight.
ENVIRONMENT = "name: slow scripted\nagent: {kind: scripted, skill: 0.6, step_latency_s: 0.15}\n"
WORKER_TIMINGS = {
    "TPC_WORKER_HEARTBEAT_S": "0.5",
    "TPC_WORKER_STALLED_AFTER_S": "4",
    "TPC_WORKER_SWEEP_INTERVAL_S": "1",
    "TPC_WORKER_SHUTDOWN_GRACE_S": "1",
    "TPC_CONCURRENCY": "8",
}


def start_worker(server: Server, name: str) -> subprocess.Popen[str]:
    with (server.home / f"{name}.log").open("a") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [TPC, "worker"],
            env={**server.env, **WORKER_TIMINGS},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=server.home,
        )


def set_up(server: Server) -> str:
    """The same tasks, environment and experiment on any server; returns the experiment id."""
    task_ids = [
        as_json(server, "sim", "task", "create", "--name", name, "--prompt", f"Please {name}.")[
            "id"
        ]
        for name in TASKS
    ]
    env_file = server.home / "env.yaml"
    env_file.write_text(ENVIRONMENT)
    env = as_json(server, "sim", "env", "create", "--file", str(env_file))
    experiment = as_json(
        server,
        "sim",
        "experiment",
        "create",
        "--name",
        "fault test",
        "--task-ids",
        ",".join(task_ids),
        "--env-ids",
        env["id"],
        "--repeats",
        str(REPEATS),
    )
    experiment_id: str = experiment["id"]
    return experiment_id


def wait_until(server: Server, exp_id: str, done: int, timeout_s: float = 150) -> dict[str, Any]:
    """The iteration's status once at least `done` runs are terminal (or it completed)."""

    def reached() -> dict[str, Any] | None:
        status: dict[str, Any] = as_json(server, "sim", "experiment", "run", "status", exp_id)
        runs = status["runs"]
        finished = runs["total"] - runs["queued"] - runs["running"]
        return status if status["status"] != "running" or finished >= done else None

    return eventually(reached, what=f"{done} finished runs", timeout=timeout_s, interval=0.2)


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the store or on which worker ran what."""
    summary = results["summary"]
    return {
        "runs": summary["runs"],
        "score": summary["score"],
        "tasks": sorted((t["name"], t["score"], t["runs"]) for t in summary["tasks"]),
        "clusters": sorted(
            (c["category"], c["root_cause"]["area"], c["size"]) for c in results["failure_clusters"]
        ),
    }


@pytest.mark.timeout(400)
def test_killed_workers_lose_no_run_and_complete_none_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    (tmp_path / "pg").mkdir()
    server = Server(tmp_path / "pg", database_url=postgres_url, args=("--no-workers",)).start()
    workers: list[subprocess.Popen[str]] = []
    try:
        exp_id = set_up(server)
        workers = [start_worker(server, f"worker-{i}") for i in range(3)]
        run = as_json(server, "sim", "experiment", "run", exp_id)
        assert run["iteration"] == 1 and run["runs"]["total"] == len(TASKS) * REPEATS

        wait_until(server, exp_id, done=40)
        workers[0].send_signal(signal.SIGKILL)
        workers[1].send_signal(signal.SIGTERM)
        assert workers[1].wait(timeout=60) == 0  # a clean shutdown: in-flight runs requeued

        status = wait_until(server, exp_id, done=len(TASKS) * REPEATS)
        if status["status"] == "running":
            status = eventually(
                lambda: (
                    now
                    if (now := as_json(server, "sim", "experiment", "run", "status", exp_id))[
                        "status"
                    ]
                    != "running"
                    else None
                ),
                what="the iteration closed",
                interval=0.2,
            )
        assert status["status"] == "completed", status
        assert status["runs"]["queued"] == status["runs"]["running"] == 0

        history = as_json(server, "sim", "experiment", "history", exp_id)
        events = history["items"]
        completed = Counter(e["id"] for e in events if e["type"] == "Run.Completed")
        started = Counter(e["id"] for e in events if e["type"] == "Run.Started")
        assert len(completed) == len(TASKS) * REPEATS
        assert set(completed.values()) == {1}, "a run completed twice"
        # The killed worker's runs were retried: a second attempt, visible in the history.
        assert max(started.values()) >= 2
        pg_results = as_json(server, "sim", "experiment", "results", exp_id)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)
        server.stop()

    (tmp_path / "lite").mkdir()
    lite = Server(tmp_path / "lite").start()
    try:
        lite_exp = set_up(lite)
        as_json(lite, "sim", "experiment", "run", lite_exp)
        as_json(lite, "sim", "experiment", "run", "status", lite_exp, "--watch")
        lite_results = as_json(lite, "sim", "experiment", "results", lite_exp)
    finally:
        lite.stop()
    assert comparable(pg_results) == comparable(lite_results)
