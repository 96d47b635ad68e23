"""Distributed workers: one iteration executed by 1, 2 and 4 `tpc worker` processes on one
PostgreSQL database, against the same iteration on the embedded SQLite store.

    .venv/bin/python benchmarks/workers.py               # 10,000 runs; 1, 2 and 4 workers
    .venv/bin/python benchmarks/workers.py --runs 2000   # a smaller iteration
    .venv/bin/python benchmarks/workers.py --quick       # 400 runs; 1 and 2 workers
    .venv/bin/python benchmarks/workers.py --profile /tmp/prof   # py-spy on one worker each
    .venv/bin/python benchmarks/workers.py --runs 1000 --agent-seconds 2   # agent-like runs

Everything goes through the real processes: `tpc serve` (with `--no-workers` on PostgreSQL)
serves the API, the catalog is created through the HTTP API (tasks) and the CLI (replay
environments from a folder, the experiment with examples/signals.yaml), `tpc worker`
processes take the runs from the queue, and the clock runs from the trigger's POST until the
iteration's status reads `completed`. The iteration: 100 tasks × 2 replay environments
(examples/transcripts/) × 50 repeats, scaled to `--runs`. Replay runs do no agent work, so
they measure the coordination alone; `--agent-seconds S` makes them scripted runs that wait
S seconds each (as an agent waits on its provider), where more workers pay.

Each PostgreSQL measurement gets a new database (`tpc_bench_<random>`, dropped at the end) on
the server `--postgres` names. Baseline, measured in the same run: the same iteration on a
SQLite file executed by one `tpc serve` with its in-process executor. Ratios: runs/s against
the baseline's runs/s, and against one worker's.

Beside the times, what each run costs PostgreSQL (from the statistics views, reset at the
trigger): transactions, rows written, and with pg_stat_statements (when the server preloads
it) the statements and the costliest of them; what the database's backends were doing
(pg_stat_activity sampled every 50 ms: running, waiting for the event table's lock or the
views' advisory lock, flushing WAL, waiting for their client inside a transaction); and the
CPU each kind of process used (from /proc, when the server runs on this machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.store import (  # noqa: E402
    EXAMPLES,
    LABELS,
    POSTGRES_ADMIN_URL,
    TASK_KINDS,
    postgres_database,
    transcript_object,
)
from tests.e2e.server import PROVIDER_VARIABLES  # noqa: E402  (never reach its processes)

BIN = Path(sys.executable).parent
TPC = shutil.which("tpc", path=str(BIN)) or "tpc"
PY_SPY = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
TOKEN = "benchmark-token"
MAX_TASKS = 100
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05


@dataclass(frozen=True)
class Shape:
    tasks: int
    repeats: int
    # 0: replay runs (no agent work). Else scripted runs that wait this long (4 steps), as
    # agent runs wait on a provider: what more workers are for.
    agent_seconds: float = 0.0

    @property
    def runs(self) -> int:
        return self.tasks * len(LABELS) * self.repeats

    @classmethod
    def for_runs(cls, runs: int, agent_seconds: float = 0.0) -> Shape:
        tasks = min(MAX_TASKS, max(1, runs // len(LABELS)))
        return cls(tasks, max(1, runs // (tasks * len(LABELS))), agent_seconds)

    def describe(self) -> str:
        if self.agent_seconds:
            kind = f"scripted runs of {self.agent_seconds:g} s each"
            environments = "scripted environments"
        else:
            kind, environments = "replay runs", "replay environments"
        return (
            f"{self.runs:,} {kind} ({self.tasks} tasks × {len(LABELS)} {environments} ×"
            f" {self.repeats} repeats, examples/signals.yaml)"
        )


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (None: gone, or not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def child_of(pid: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                return int(entry.name)
    return None


class Processes:
    """`tpc serve` and `tpc worker` processes on one store, stopped (SIGTERM) at the end."""

    def __init__(self, home: Path, database_url: str, concurrency: int) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES},
            "HOME": str(home),
            "TPC_API_URL": self.url,
            "TPC_API_TOKEN": TOKEN,
            "TPC_DATABASE_URL": database_url,
            "TPC_CONCURRENCY": str(concurrency),
            "TPC_POLL_INTERVAL": "0.2",
            "NO_COLOR": "1",
        }
        self.server: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.profiled: dict[int, Path] = {}  # py-spy's pid → its output

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.home / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home
            )

    def serve(self, no_workers: bool) -> None:
        args = [TPC, "serve", "--port", str(self.port)] + (["--no-workers"] if no_workers else [])
        self.server = self._start("serve", args)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"tpc serve exited:\n{self.log_tail('serve')}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("tpc serve did not start within 60 s")

    def start_workers(self, count: int, profile: Path | None) -> None:
        worker = [TPC, "worker"]
        for i in range(count):
            args = worker
            if profile is not None and i == 0 and PY_SPY is not None:
                output = profile / f"worker-{count}w.txt"
                args = [PY_SPY, "record", "-r", "50", "--nonblocking", "-f", "raw"]
                args += ["-o", str(output), "--", *worker]
            self.workers.append(self._start(f"worker-{i}", args))
            if args[0] == PY_SPY:
                self.profiled[self.workers[-1].pid] = output

    def tpc_pids(self) -> dict[str, list[int]]:
        """The Python processes: the server, and each worker (under py-spy: its child)."""
        workers = []
        for process in self.workers:
            pid = child_of(process.pid) if process.pid in self.profiled else process.pid
            if pid is not None:
                workers.append(pid)
        return {"serve": [self.server.pid] if self.server else [], "workers": workers}

    def check_alive(self) -> None:
        for name, process in [
            ("serve", self.server),
            *((f"worker-{i}", w) for i, w in enumerate(self.workers)),
        ]:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.home / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def tpc(self, *args: str) -> Any:
        done = subprocess.run(
            [TPC, "--format", "json", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.home,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tpc {' '.join(args)} failed: {done.stderr}")
        return json.loads(done.stdout)

    def stop(self) -> None:
        """Workers first (under py-spy: the worker itself, so that py-spy writes its file),
        then the server."""
        for process in self.workers:
            target = child_of(process.pid) if process.pid in self.profiled else process.pid
            if target is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(target, signal.SIGTERM)
        self._wait(self.workers)
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            self._wait([self.server])

    @staticmethod
    def _wait(processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the iteration ----------------------------------------------------------------------------


def write_replay_dirs(work: Path, tasks: int) -> dict[str, Path]:
    """One folder per example label, holding `<task name>.json` for every task (the CLI's
    `env create --replay-dir` layout)."""
    folders = {}
    for label in LABELS:
        folder = work / "replay" / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(tasks):
            document = transcript_object(TASK_KINDS[i % len(TASK_KINDS)], label)
            (folder / f"task-{i:04d}.json").write_text(json.dumps(document))
        folders[label] = folder
    return folders


def set_up(processes: Processes, client: httpx.Client, shape: Shape, work: Path) -> str:
    """Tasks through the HTTP API, the replay environments and the experiment through the
    CLI; returns the experiment's id."""
    task_ids = []
    for i in range(shape.tasks):
        name = f"task-{i:04d}"
        body = {"name": name, "prompt": f"{TASK_KINDS[i % len(TASK_KINDS)]}: {name}"}
        response = client.post("/v1/tasks", json=body)
        response.raise_for_status()
        task_ids.append(response.json()["id"])
    if shape.agent_seconds:
        # Four steps each (skill 1: the scripted agent always succeeds the same way).
        agent = {"kind": "scripted", "skill": 1, "step_latency_s": shape.agent_seconds / 4}
        env_ids = []
        for label in LABELS:
            body = {"name": f"{label} (scripted)", "agent": agent}
            response = client.post("/v1/environments", json=body)
            response.raise_for_status()
            env_ids.append(response.json()["id"])
    else:
        env_ids = [
            processes.tpc("sim", "env", "create", "--name", label, "--replay-dir", str(folder))[
                "id"
            ]
            for label, folder in write_replay_dirs(work, shape.tasks).items()
        ]
    experiment = processes.tpc(
        "sim", "experiment", "create", "--name", "workers benchmark",
        "--task-ids", ",".join(task_ids), "--env-ids", ",".join(env_ids),
        "--repeats", str(shape.repeats), "--signal-config", str(EXAMPLES / "signals.yaml"),
    )  # fmt: skip
    exp_id: str = experiment["id"]
    return exp_id


@dataclass
class Timing:
    trigger_s: float  # the POST: the iteration saved and (PostgreSQL) every run queued
    runs_done_s: float  # first status with no run queued or running
    completed_s: float  # first status `completed`
    status: dict[str, Any]


def run_iteration(
    processes: Processes,
    client: httpx.Client,
    exp_id: str,
    timeout_s: float,
) -> Timing:
    started = time.perf_counter()
    response = client.post(f"/v1/experiments/{exp_id}/iterations")
    response.raise_for_status()
    trigger_s = time.perf_counter() - started
    number = response.json()["iteration"]
    runs_done_s = 0.0
    deadline = started + timeout_s
    while True:
        status = client.get(f"/v1/experiments/{exp_id}/iterations/{number}").json()
        now = time.perf_counter() - started
        runs = status["runs"]
        if not runs_done_s and runs["queued"] == runs["running"] == 0:
            runs_done_s = now
        if status["status"] != "running":
            return Timing(trigger_s, runs_done_s or now, now, status)
        if time.perf_counter() > deadline:
            raise RuntimeError(f"not completed within {timeout_s:.0f} s: {status}")
        processes.check_alive()
        time.sleep(0.1)


# -- PostgreSQL's side ------------------------------------------------------------------------


def classify(state: str | None, wait_type: str | None, wait: str | None, query: str) -> str:
    """What a backend of the benchmark's database is doing at a sample."""
    if state == "idle in transaction":
        return "idle in transaction (its client computes)"
    if state != "active":
        return ""
    if wait_type == "Lock":
        if query.lstrip().upper().startswith("LOCK TABLE"):
            return "waits for the event table's lock"
        if "pg_advisory_xact_lock" in query:
            return "waits for the views' advisory lock"
        return f"waits for another lock ({wait})"
    if wait in ("WALSync", "WALWrite", "WALInsert", "WalSync", "WALBufMapping"):
        return "flushes WAL (commit)"
    if wait_type is None:
        return "runs (CPU)"
    if wait_type == "Client":
        return "waits for its client (mid-statement)"
    return f"other wait ({wait_type}:{wait})"


class PostgresMonitor:
    """Statistics of one database between `start` (at the trigger) and `finish` (after every
    process stopped, so that each backend flushed its counters on exit)."""

    def __init__(self, admin_url: str, url: str) -> None:
        self.admin_url = admin_url
        self.url = url
        self.dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(admin_url, autocommit=True) as admin:
            preload = admin.execute("SHOW shared_preload_libraries").fetchone()
        self.statements = bool(preload and "pg_stat_statements" in str(preload[0]))
        if self.statements:
            with psycopg.connect(url, autocommit=True) as db:
                db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.samples: Counter[str] = Counter()
        self.holders: Counter[str] = Counter()
        self.ticks = 0
        self.base_cpu: dict[int, float] = {}
        self.last_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("SELECT pg_stat_reset()")
            if self.statements:
                db.execute(
                    "SELECT pg_stat_statements_reset(0, oid, 0) FROM pg_database"
                    " WHERE datname = current_database()"
                )
            for pid in self._backends(db):
                cpu = cpu_seconds(pid)
                if cpu is not None:
                    self.base_cpu[pid] = self.last_cpu[pid] = cpu
        self._thread = threading.Thread(target=self._sample, name="pg-sampler", daemon=True)
        self._thread.start()

    def _backends(self, db: psycopg.Connection[Any]) -> list[int]:
        rows = db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
        return [row[0] for row in rows]

    def _sample(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            while not self._stop.wait(SAMPLE_S):
                rows = db.execute(
                    "SELECT pid, state, wait_event_type, wait_event, query FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                self.ticks += 1
                for pid, state, wait_type, wait, query in rows:
                    kind = classify(state, wait_type, wait, query or "")
                    if kind:
                        self.samples[kind] += 1
                    if state == "idle in transaction":
                        self.holders[" ".join((query or "").split())[:60]] += 1
                    cpu = cpu_seconds(pid)
                    if cpu is not None:
                        self.last_cpu[pid] = cpu

    def stop_sampling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def backend_cpu(self) -> float | None:
        if not self.last_cpu:
            return None
        return sum(cpu - self.base_cpu.get(pid, 0.0) for pid, cpu in self.last_cpu.items())

    def finish(self, runs: int) -> dict[str, Any]:
        """Per-run counters (call after every tpc process stopped)."""
        time.sleep(0.5)
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
                " tup_returned, tup_fetched, deadlocks FROM pg_stat_database WHERE datname = %s",
                (self.dbname,),
            ).fetchone()
        assert row is not None
        names = ("commits", "rollbacks", "inserted", "updated", "deleted", "returned", "fetched")
        costs: dict[str, Any] = {
            name: value / runs for name, value in zip(names, row[:7], strict=True)
        }
        costs["deadlocks"] = row[7]
        costs["activity"] = {k: v / max(1, self.ticks) for k, v in self.samples.most_common()}
        costs["holders"] = [
            (query, count / max(1, self.ticks)) for query, count in self.holders.most_common(4)
        ]
        with psycopg.connect(self.url, autocommit=True) as db:
            tables = db.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, seq_scan, idx_scan"
                " FROM pg_stat_user_tables ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC"
                " LIMIT 8"
            ).fetchall()
            costs["tables"] = [
                (name, ins / runs, upd / runs, dele / runs, (seq or 0) / runs, (idx or 0) / runs)
                for name, ins, upd, dele, seq, idx in tables
            ]
            if self.statements:
                total = db.execute(
                    "SELECT SUM(calls), SUM(total_exec_time) FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ).fetchone()
                assert total is not None
                costs["statements"] = float(total[0] or 0) / runs
                costs["statement_ms"] = float(total[1] or 0) / runs
                costs["top_statements"] = [
                    (" ".join(query.split())[:90], calls / runs, ms / runs)
                    for query, calls, ms in db.execute(
                        "SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE"
                        " dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                        " ORDER BY total_exec_time DESC LIMIT 12"
                    ).fetchall()
                ]
        return costs


# -- a measurement ----------------------------------------------------------------------------


@dataclass
class Measurement:
    name: str
    runs: int
    timing: Timing
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by kind of process
    costs: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.timing.completed_s

    @property
    def rate(self) -> float:
        return self.runs / self.seconds


def measure(
    name: str,
    database_url: str,
    shape: Shape,
    workers: int,
    concurrency: int,
    admin_url: str | None,
    profile: Path | None,
) -> Measurement:
    """One store, one `tpc serve` (+ `workers` × `tpc worker` on PostgreSQL), one iteration."""
    postgres = database_url.startswith("postgresql")
    with tempfile.TemporaryDirectory(prefix="tpc-workers-bench-") as tmp:
        work = Path(tmp)
        processes = Processes(work, database_url, concurrency)
        monitor = None
        try:
            processes.serve(no_workers=postgres)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=processes.url, headers=headers, timeout=600) as client:
                exp_id = set_up(processes, client, shape, work)
                if postgres:
                    processes.start_workers(workers, profile)
                    wait_for_workers(processes, database_url, workers)
                    assert admin_url is not None
                    monitor = PostgresMonitor(admin_url, database_url)
                    monitor.start()
                pids = processes.tpc_pids()
                before = {pid: cpu_seconds(pid) or 0.0 for group in pids.values() for pid in group}
                timing = run_iteration(
                    processes,
                    client,
                    exp_id,
                    timeout_s=max(300, shape.runs),
                )
                cpu = {
                    kind: sum((cpu_seconds(pid) or 0.0) - before[pid] for pid in group)
                    for kind, group in pids.items()
                }
            if monitor is not None:
                monitor.stop_sampling()
                backends = monitor.backend_cpu()
                if backends is not None:
                    cpu["postgres"] = backends
        except BaseException:
            for log in ("serve", *(f"worker-{i}" for i in range(len(processes.workers)))):
                tail = processes.log_tail(log, 15)
                if tail:
                    print(f"--- {log}.log (last lines)\n{tail}", file=sys.stderr)
            raise
        finally:
            if monitor is not None:
                monitor.stop_sampling()
            processes.stop()
        costs = monitor.finish(shape.runs) if monitor is not None else {}
        return Measurement(name, shape.runs, timing, cpu, costs)


def wait_for_workers(processes: Processes, url: str, count: int) -> None:
    """Until `count` workers registered with the queue (each opened its store and queue)."""
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as db:
        while time.monotonic() < deadline:
            processes.check_alive()
            present = db.execute("SELECT to_regclass('procrastinate_workers')").fetchone()
            if present and present[0]:
                row = db.execute("SELECT COUNT(*) FROM procrastinate_workers").fetchone()
                if row and row[0] >= count:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"{count} workers did not start within 120 s")


# -- report -----------------------------------------------------------------------------------


def print_row(m: Measurement, baseline: Measurement | None, one: Measurement | None) -> None:
    vs_base = f"{m.rate / baseline.rate:8.2f}" if baseline else "       —"
    vs_one = f"{m.rate / one.rate:9.2f}" if one else "        —"
    cpu = " + ".join(
        f"{m.cpu[k]:.{0 if m.cpu[k] >= 10 else 1}f}"
        for k in ("serve", "workers", "postgres")
        if k in m.cpu
    )
    cores = sum(m.cpu.values()) / m.seconds
    print(
        f"  {m.name:<34} {m.seconds:7.1f} s {m.rate:7.0f} {vs_base} {vs_one}"
        f"   {m.timing.trigger_s:5.1f} s {m.timing.completed_s - m.timing.runs_done_s:5.1f} s"
        f"   {cpu:>14} s = {cores:.2f} cores"
    )


def print_costs(m: Measurement) -> None:
    costs = m.costs
    if not costs:
        return
    print(f"  {m.name}: per run")
    print(
        f"    transactions {costs['commits']:.1f} (+{costs['rollbacks']:.2f} rolled back),"
        f" rows inserted {costs['inserted']:.1f} / updated {costs['updated']:.1f} /"
        f" deleted {costs['deleted']:.1f}, rows read {costs['returned'] + costs['fetched']:.0f}"
        f"; CPU ms: " + ", ".join(f"{k} {1000 * v / m.runs:.1f}" for k, v in m.cpu.items())
    )
    if "statements" in costs:
        print(
            f"    statements {costs['statements']:.1f} ({costs['statement_ms']:.2f} ms of server"
            " time); the costliest:"
        )
        for query, calls, ms in costs["top_statements"]:
            print(f"      {ms:6.3f} ms {calls:6.2f}×  {query}")
    writes = ", ".join(
        f"{name} {ins + upd + dele:.2f}" for name, ins, upd, dele, _, _ in costs["tables"]
    )
    print(f"    rows written by table: {writes}")
    activity = ", ".join(
        f"{kind} {mean:.2f}" for kind, mean in costs["activity"].items() if mean >= 0.01
    )
    print(f"    backends, mean over samples: {activity}")
    if costs["holders"]:
        holders = "; ".join(f"{q!r} {mean:.2f}" for q, mean in costs["holders"])
        print(f"    idle in transaction after: {holders}")


# What a worker does per run, by the qualified names py-spy reports (inclusive shares).
PROFILE_MARKS = {
    "the job (QueueWorker._execute_job)": "QueueWorker._execute_job",
    "completion check": "RunRecording.complete_iteration_if_done",
    "  of which the views' catch-up": "Projector.catch_up",
    "  of which clustering the failures": "RunRecording._failing_runs",
    "start (the run's stream, the cancel flag, a save)": "RunRecording.start_queued_run",
    "finish_run (blob + a save)": "RunRecording.finish_run",
    "stats + extraction": "RunExecution._record",
    "replay (blob + parse)": "ReplayRunner.run",
    "cancel_requested (at the start and while running)": "Views.cancel_requested",
    "queue fetch": "JobManager.fetch_job",
    "queue finish": "JobManager.finish_job",
    "start-up imports": "_find_and_load",
}


def summarize_profile(path: Path) -> list[tuple[str, float]]:
    """Shares of one worker's py-spy samples (raw format). py-spy counts a thread blocked in
    psycopg's wait as busy, so these are shares of threads' wall time, waits included; the
    last figure is the share of samples whose leaf is that wait (the server's answer)."""
    total = waiting = 0
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, text = line.rpartition(" ")
        if not text.isdigit():
            continue
        count = int(text)
        total += count
        frames = [frame.split(" (", 1)[0] for frame in stack.split(";")]
        names = set(frames)
        for label, name in PROFILE_MARKS.items():
            if name in names:
                inclusive[label] += count
        if frames and frames[-1] == "Connection.wait":
            waiting += count
    shares = [(label, inclusive[label] / max(1, total)) for label in PROFILE_MARKS]
    return [*shares, ("leaf: waiting for PostgreSQL (psycopg)", waiting / max(1, total))]


def print_report(measurements: list[Measurement], baseline: Measurement | None) -> None:
    """The table of rates against SQLite and one worker, and what a run costs PostgreSQL."""
    one = next((m for m in measurements if m.name == "PostgreSQL, 1 worker"), None)
    print()
    print(
        f"  {'':<34} {'trigger → completed':>19}   × SQLite  × 1 worker   trigger  tail"
        "   CPU serve + workers + postgres"
    )
    print(f"  {'':<34} {'wall':>9} {'runs/s':>7}")
    for m in measurements:
        print_row(m, baseline, one if m.name.startswith("PostgreSQL") else None)
    print("  (trigger: the POST, iteration saved and runs queued; tail: last run done → completed)")
    if any(m.costs for m in measurements):
        print("\nPostgreSQL, what a run costs the database:")
        for m in measurements:
            print_costs(m)


def figures_of(measurements: list[Measurement], baseline: Measurement | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for m in measurements:
        key = "sqlite" if m.name.startswith("SQLite") else f"pg_{m.name.split()[1]}"
        figures[key] = {
            "runs": m.runs,
            "seconds": m.seconds,
            "runs_per_s": m.rate,
            "status": m.timing.status["status"],
            "vs_sqlite": m.rate / baseline.rate if baseline else None,
            "cpu": m.cpu,
            "costs": m.costs,
        }
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="runs in the iteration (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="400 runs, 1 and 2 workers")
    parser.add_argument("--workers", help="worker counts, comma-separated (default 1,2,4)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="runs at once per process (default 16)"
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN_URL,
        help="a PostgreSQL role that may create databases (default TPC_BENCH_POSTGRES_URL or "
        "%(default)s); each measurement makes its own database and drops it",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite baseline")
    parser.add_argument(
        "--agent-seconds",
        type=float,
        default=0.0,
        help="scripted runs that each wait this long, as agents wait on a provider, instead of"
        " replay runs (default: replay)",
    )
    parser.add_argument(
        "--profile", type=Path, help="a folder: py-spy records one worker of each measurement"
    )
    args = parser.parse_args(argv)
    shape = Shape.for_runs(args.runs or (400 if args.quick else 10_000), args.agent_seconds)
    counts = [int(n) for n in (args.workers or ("1,2" if args.quick else "1,2,4")).split(",")]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        if PY_SPY is None:
            print("py-spy not found: no profile (pip install py-spy into the venv)")
    print(
        f"{shape.describe()}, concurrency {args.concurrency} per process;"
        f" {os.cpu_count()} cores here"
    )
    measurements: list[Measurement] = []
    baseline = None
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="tpc-workers-sqlite-") as tmp:
            baseline = measure(
                "SQLite, tpc serve (in-process)",
                f"sqlite:///{tmp}/tpc.db",
                shape,
                0,
                args.concurrency,
                None,
                None,
            )
        measurements.append(baseline)
        print(f"  baseline done: {baseline.seconds:.1f} s", flush=True)
    for count in counts:
        with postgres_database(args.postgres) as url:
            if url is None:
                break
            name = f"PostgreSQL, {count} worker{'s' if count > 1 else ''}"
            m = measure(
                name,
                url,
                shape,
                count,
                args.concurrency,
                args.postgres,
                args.profile,
            )
            measurements.append(m)
            print(f"  {name} done: {m.seconds:.1f} s", flush=True)
    print_report(measurements, baseline)
    figures = figures_of(measurements, baseline)
    if args.profile is not None and PY_SPY is not None:
        print("\nOne worker's py-spy samples (threads' wall time, waits in psycopg included):")
        for path in sorted(args.profile.glob("worker-*w.txt")):
            print(f"  {path.name}:")
            for label, share in summarize_profile(path):
                print(f"    {share:6.1%}  {label}")
    return figures


if __name__ == "__main__":
    main()
