"""Orchestration: how close an iteration of `llm` runs comes to the time the provider alone takes.

    .venv/bin/python benchmarks/orchestration.py                   # 1,000 runs × 10 steps, 50 ms
    .venv/bin/python benchmarks/orchestration.py --latency-ms 500  # the CPU is not the bound
    .venv/bin/python benchmarks/orchestration.py --quick           # a smoke run
    .venv/bin/python benchmarks/orchestration.py --no-sqlite --workers 2  # 2 `tpc worker`s

Each run is an `llm` environment (the Anthropic provider) whose scripted model calls the cheap
`search_docs` tool over a small docs folder `steps - 1` times, then answers: `steps` model
responses. The model is the loopback fake provider (`tests/fakes/provider.py`) answering every
response after a fixed latency, serving in a separate process so that its CPU is not taken
from the event loop being measured.

Measured through the real code path: the `Service` on a temporary SQLite file (then on a fresh
PostgreSQL database `tpc_bench_<random>` when one is reachable, dropped at the end), `trigger`,
the in-process `Executor` (its semaphore is the concurrency; the provider's own limit is set to
the same) with the real `LlmRunner` and the real Anthropic SDK client on its aiohttp transport
(ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY point at the fake), the live log, extraction with
examples/signals.yaml, the projections' follower polling as in `tpc serve`, until the iteration
is `completed`; on uvloop, as `tpc serve` runs.

Baseline: the ideal makespan, ceil(runs / concurrency) × steps × latency, what the iteration
would take if nothing but the provider's latency cost time. Efficiency = ideal ÷ measured
(1.0: orchestration is free; target ≥ 0.8). Beside it, measured in the same run: the CPU time
of the event store's saves (start_run, the live logs' record_live_messages, finish_run) and of
stats + extraction + transcript encoding, each timed around the real calls (subclasses that
only time them); the CPU of the event loop's thread, of this process, of the fake's process
and of the rest of the machine (these machines are shared). The event loop's own CPU is a
floor under the makespan whatever the machine: `floor` says what efficiency it leaves.

`--workers N`: on PostgreSQL, the runs are executed by N `tpc worker` processes instead (each
with its own event loop and SDK clients, sharing the concurrency), as deployed at scale; this
process triggers, queues the jobs as `tpc serve --no-workers` would, and watches the views. The
CPU of the workers, of the fake and of the machine is reported beside the efficiency.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from application.executor import Executor  # noqa: E402
from application.live_log import LiveBatch  # noqa: E402
from application.queue_worker import QueueDispatcher  # noqa: E402
from application.run_execution import RunExecution  # noqa: E402
from application.run_recording import RunRecording  # noqa: E402
from application.service import Service  # noqa: E402
from benchmarks.store import POSTGRES_ADMIN_URL, postgres_database  # noqa: E402
from domain.definitions import LlmAgent  # noqa: E402
from domain.iterations import Iteration  # noqa: E402
from domain.runs import Run  # noqa: E402
from infra.llm.chat import ChatMessage, ChatRequest, ToolOutput  # noqa: E402
from infra.llm.judge import LlmJudge  # noqa: E402
from infra.llm.providers import Providers, ProviderSettings  # noqa: E402
from infra.run_queue import open_queue  # noqa: E402
from infra.runners.llm import LlmRunner  # noqa: E402
from infra.runners.tools import build_toolbox  # noqa: E402
from infra.runners.workspace import Workspace  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections.read_models import document  # noqa: E402

EXAMPLES = ROOT / "examples"
MODEL = "claude-sonnet-4-6"
PROMPT = "Install the SDK."
QUERY = "install the sdk"
MAX_REPEATS = 1000  # ExperimentCommands.create_experiment's limit: more runs are spread over tasks

# The fake provider's process: the scripted model calls `search_docs` until it has answered
# `steps - 1` times, then says it is done. The recorded requests are not kept (tens of
# thousands of conversations would hold hundreds of MB); nothing here reads them.
FAKE_SCRIPT = r"""
import sys
from tests.fakes.provider import FakeProvider, Reply

latency_s, steps, query = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fake = FakeProvider(latency_s=latency_s)


def reply(request):
    fake._requests.clear()  # called under the fake's lock
    answered = sum(1 for m in request.messages if m.get("role") == "assistant")
    if answered < steps - 1:
        return Reply.tool("search_docs", {"query": query})
    return Reply.say(f"Done: the SDK is installed ({answered + 1} steps).")


fake.respond(reply)
fake.start()
print(fake.url, flush=True)
sys.stdin.read()  # until the benchmark closes this pipe
fake.stop()
"""

DOCS = {
    "install.md": "# Install the SDK\n\nRun `pip install acme` to install the SDK.\n"
    "Then create a client with your API key.\n",
    "quickstart.md": "# Quickstart\n\nCreate a customer with `client.customers.create`.\n"
    "Install the SDK first (see install.md).\n",
    "webhooks.md": "# Webhooks\n\nVerify each webhook's signature with your signing secret.\n",
}


@dataclass
class Fake:
    url: str
    process: subprocess.Popen[str]

    @contextmanager
    def in_environment(self) -> Iterator[None]:
        """ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY pointing at the fake, as `tpc serve` would
        read them (the trigger checks the key is set; the SDK client reads both), restored
        afterwards."""
        saved = {name: os.environ.get(name) for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")}
        os.environ.update(ANTHROPIC_BASE_URL=self.url, ANTHROPIC_API_KEY="test-key")
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def fake_provider(latency_s: float, steps: int) -> Iterator[Fake]:
    """`tests.fakes.provider` serving in a subprocess of its own."""
    process = subprocess.Popen(
        [sys.executable, "-c", FAKE_SCRIPT, str(latency_s), str(steps), QUERY],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the fake provider did not start")
        yield Fake(url, process)
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the fake stops
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux: /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- timing the store and extraction in the measured run ---------------------------------------


@dataclass
class Timing:
    calls: int = 0
    cpu: float = 0.0  # thread CPU seconds
    wall: float = 0.0  # seconds, waiting for the GIL and for locks included


@dataclass
class Clock:
    """Accumulates the time of calls made in the executor's worker threads."""

    timings: dict[str, Timing] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            yield
        finally:
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            with self.lock:
                timing = self.timings.setdefault(name, Timing())
                timing.calls += 1
                timing.cpu += cpu
                timing.wall += wall

    def get(self, name: str) -> Timing:
        return self.timings.get(name, Timing())


class TimedRunRecording(RunRecording):
    """The run recording, timing the saves a run makes (the calls themselves are unchanged)."""

    def __init__(self, runs: RunRecording) -> None:
        vars(self).update(vars(runs))  # the same parts, the methods below timed
        self.clock = Clock()
        self.durations: list[float] = []

    def start_run(self, iteration: Iteration, run_id: str) -> Run:
        with self.clock.timing("start_run"):
            return super().start_run(iteration, run_id)

    def record_live_messages(self, batch: LiveBatch) -> list[Run]:
        with self.clock.timing("record_live_messages"):
            return super().record_live_messages(batch)

    def finish_run(self, run: Run, status: str, *args: Any) -> None:
        with self.clock.timing("finish_run"):
            super().finish_run(run, status, *args)
        self.durations.append(float(args[1].duration or 0.0))  # the agent loop's time


class TimedService(Service):
    """The service, its run recording timed."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.runs: TimedRunRecording = TimedRunRecording(self.runs)
        self.clock = self.runs.clock
        self.durations = self.runs.durations

    def timed_catch_up(self) -> None:
        with self.clock.timing("catch_up"):
            self.projector.catch_up()


class TimedRunExecution(RunExecution):
    """Times recording an outcome: stats, extraction, the transcript's JSON, then finish_run."""

    def __init__(self, runs: TimedRunRecording, *args: Any) -> None:
        super().__init__(runs, *args)
        self._clock = runs.clock

    def _record(self, *args: Any) -> None:
        with self._clock.timing("record"):
            super()._record(*args)


# -- the baseline measured in the same run: the provider client alone ---------------------------


@dataclass
class Bare:
    seconds: float
    loop_cpu: float
    calls: int


async def _bare_calls(setup: Setup, docs: Path) -> Bare:
    """The same model calls, conversations and concurrency through the provider client alone
    (`Providers`' client: the SDK behind its retries and limit): no service, executor, workspace,
    tool calls (the search's result is computed once and sent each time), live log or store."""
    agent = LlmAgent.model_validate(agent_definition(setup, docs))
    with tempfile.TemporaryDirectory(prefix="tpc-orchestration-bare-") as tmp:
        toolbox = build_toolbox(
            agent.tools, Workspace(Path(tmp)), docs, network="none", shell_timeout_s=1.0
        )
        found = await toolbox.call("search_docs", {"query": QUERY})
    providers = Providers(ProviderSettings(concurrency=setup.concurrency))
    client = providers.client(agent.provider, agent.base_url)
    slots = asyncio.Semaphore(setup.concurrency)
    calls = 0

    async def run() -> None:
        nonlocal calls
        async with slots:
            chat = [ChatMessage.user(PROMPT)]
            while True:
                response = await client.chat(
                    ChatRequest(
                        model=agent.model,
                        system=agent.system_prompt,
                        messages=chat,
                        tools=list(toolbox.specs),
                        max_tokens=agent.max_tokens,
                        temperature=agent.temperature,
                    )
                )
                calls += 1
                chat.append(response.as_message())
                if not response.tool_calls:
                    return
                outputs = (ToolOutput(c.id, found.content) for c in response.tool_calls)
                chat.append(ChatMessage("tool", tuple(outputs)))

    loop_cpu, started = time.thread_time(), time.perf_counter()
    try:
        await asyncio.gather(*(run() for _ in range(setup.runs)))
    finally:
        await providers.aclose()
    return Bare(time.perf_counter() - started, time.thread_time() - loop_cpu, calls)


# -- one iteration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    runs: int
    concurrency: int
    steps: int
    latency_s: float
    poll_s: float

    @property
    def ideal(self) -> float:
        """Seconds the iteration would take if only the provider's latency cost time."""
        return math.ceil(self.runs / self.concurrency) * self.steps * self.latency_s


def store_url(where: Path | str) -> str:
    return where if isinstance(where, str) else f"sqlite:///{where}"


def _layout(runs: int) -> tuple[int, int]:
    """(tasks, repeats) with tasks × repeats = runs and repeats within the service's limit."""
    tasks = math.ceil(runs / MAX_REPEATS)
    while runs % tasks:
        tasks += 1
    return tasks, runs // tasks


def agent_definition(setup: Setup, docs: Path) -> dict[str, Any]:
    return {
        "kind": "llm",
        "provider": "anthropic",
        "model": MODEL,
        "tools": ["search_docs"],
        "docs": str(docs),
        "max_steps": setup.steps + 5,
    }


def prepare(service: Service, setup: Setup, docs: Path) -> tuple[str, str]:
    """A product, its tasks, one `llm` environment and an experiment of `setup.runs` runs."""
    bootstrap = service.catalog.bootstrap("benchmark-token")
    assert bootstrap is not None
    product = bootstrap.product_id
    tasks, repeats = _layout(setup.runs)
    task_ids = [
        service.catalog.create_task(product, {"name": f"install-{i}", "prompt": PROMPT}).id
        for i in range(tasks)
    ]
    agent = agent_definition(setup, docs)
    env_id = service.catalog.create_environment(product, {"name": "bench", "agent": agent}).id
    config = (EXAMPLES / "signals.yaml").read_text()
    experiment = service.experiments.create_experiment(
        product, "Orchestration", task_ids, [env_id], repeats, config
    )
    return product, experiment.id


@dataclass
class Measured:
    makespan: float
    status: dict[str, Any]
    loop_cpu: float  # the event loop's thread
    process_cpu: float  # this process: the loop and every thread
    fake_cpu: float  # the fake provider's process
    machine_busy: float  # CPU seconds the whole machine was busy, every process
    machine_total: float  # CPU seconds the machine had (cores × makespan)


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot (Linux: /proc/stat), NaN elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return math.nan, math.nan
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user … steal (guest time is already counted in user)
    return (total - idle) / tick, total / tick


async def _follow_log(service: TimedService, interval: float) -> None:
    """The projections' follower `tpc serve` runs beside the executor."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(service.timed_catch_up)


async def _iterate(
    service: TimedService, product: str, exp_id: str, setup: Setup, fake_pid: int
) -> Measured:
    providers = Providers(ProviderSettings(concurrency=setup.concurrency))
    runners: dict[str, Any] = {"llm": LlmRunner(providers)}
    executor = Executor(service.runs, runners, setup.concurrency, judge=LlmJudge(providers))
    # The same RunExecution, timing how long recording each outcome takes.
    executor._execution = TimedRunExecution(service.runs, runners, LlmJudge(providers))
    follower = asyncio.create_task(_follow_log(service, setup.poll_s)) if setup.poll_s else None
    fake_cpu = _process_cpu(fake_pid)
    machine_busy, machine_total = _machine_cpu()
    loop_cpu, process_cpu = time.thread_time(), time.process_time()
    started = time.perf_counter()
    try:
        number = (await asyncio.to_thread(service.experiments.trigger, product, exp_id)).iteration
        await executor.submit(exp_id, number)
        await executor.drain()
        makespan = time.perf_counter() - started
        loop_cpu = time.thread_time() - loop_cpu
        process_cpu = time.process_time() - process_cpu
        fake_cpu = _process_cpu(fake_pid) - fake_cpu
        busy, total = _machine_cpu()
        machine_busy, machine_total = busy - machine_busy, total - machine_total
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        await providers.aclose()
    status = document(
        await asyncio.to_thread(service.views.iteration_status, product, exp_id, number)
    )
    return Measured(makespan, status, loop_cpu, process_cpu, fake_cpu, machine_busy, machine_total)


def _loop_factory(name: str) -> Any:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def orchestrate(
    where: Path | str, setup: Setup, fake: Fake, docs: Path, loop: str
) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        bare = runner.run(_bare_calls(setup, docs))
    service = TimedService(Settings(database_url=store_url(where)))
    try:
        product, exp_id = prepare(service, setup, docs)
        with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
            measured = runner.run(_iterate(service, product, exp_id, setup, fake.process.pid))
        return report(setup, bare, measured, service, loop)
    finally:
        service.close()


def _ms(seconds: float, count: int) -> str:
    return f"{1000 * seconds / count:.2f} ms" if count else "-"


def report(
    setup: Setup, bare: Bare, measured: Measured, service: TimedService, loop: str
) -> dict[str, Any]:
    runs, span, ideal = setup.runs, measured.makespan, setup.ideal
    clock = service.clock
    names = ("start_run", "record_live_messages", "finish_run")
    saves = {name: clock.get(name) for name in names}
    save_cpu = sum(t.cpu for t in saves.values())
    record = clock.get("record")
    extract_cpu = record.cpu - saves["finish_run"].cpu  # recording the outcome, less its save
    follower = clock.get("catch_up")
    calls = runs * setup.steps
    loop_ms, bare_ms = 1000 * measured.loop_cpu / calls, 1000 * bare.loop_cpu / bare.calls
    threads_cpu = measured.process_cpu - measured.loop_cpu
    others = measured.machine_busy - measured.process_cpu - measured.fake_cpu
    durations = sorted(service.durations) or [0.0]
    counts = {k: v for k, v in measured.status["runs"].items() if v and k != "total"}
    figures: dict[str, Any] = {
        "runs": runs,
        "status": measured.status["status"],
        "counts": counts,
        "ideal_s": ideal,
        "makespan_s": span,
        "efficiency": ideal / span,
        "runs_per_s": runs / span,
        "bare_s": bare.seconds,
        "bare_efficiency": ideal / bare.seconds,
        "orchestration_ratio": bare.seconds / span,
        "store_ms_per_run": 1000 * save_cpu / runs,
        "store_share": save_cpu / span,
        "extraction_ms_per_run": 1000 * extract_cpu / runs,
        "extraction_share": extract_cpu / span,
        "loop_ms_per_call": loop_ms,
        "bare_loop_ms_per_call": bare_ms,
        "process_cpu_s": measured.process_cpu,
        "fake_cpu_s": measured.fake_cpu,
        "loop_bound_efficiency": ideal / measured.loop_cpu,
        "run_median_s": durations[len(durations) // 2],
    }
    print(
        f"  {runs} runs × {setup.steps} steps ({setup.steps - 1} search_docs calls, then an "
        f"answer), {1000 * setup.latency_s:g} ms a response, concurrency {setup.concurrency}, "
        f"{loop}: iteration {figures['status']} {counts}"
    )
    print(
        f"    ideal makespan {ideal:.2f} s | measured {span:.2f} s | "
        f"efficiency {ideal / span:.2f} (target >= 0.8) | {runs / span:.1f} runs/s"
    )
    print(
        f"    baseline, the same {bare.calls} calls through the provider client alone: "
        f"{bare.seconds:.2f} s, efficiency {ideal / bare.seconds:.2f} | orchestration ratio "
        f"(bare time ÷ iteration time) {bare.seconds / span:.2f}"
    )
    print(
        f"    a run's agent loop: median {figures['run_median_s']:.2f} s, "
        f"p90 {durations[int(0.9 * (len(durations) - 1))]:.2f} s "
        f"(ideal {setup.steps * setup.latency_s:.2f} s)"
    )
    print(
        f"    event store saves: {_ms(save_cpu, runs)} CPU a run, {100 * save_cpu / span:.1f}% of "
        "the makespan: "
        + ", ".join(f"{name} {t.calls} × {_ms(t.cpu, t.calls)}" for name, t in saves.items())
    )
    print(
        f"    stats + extraction + transcript JSON: {_ms(extract_cpu, runs)} CPU a run, "
        f"{100 * extract_cpu / span:.1f}% of the makespan"
    )
    if follower.calls:
        print(
            f"    projections (the log follower, every {setup.poll_s:g} s): {follower.calls} "
            f"catch-ups, {follower.cpu:.2f} s CPU, {100 * follower.cpu / span:.1f}% of the makespan"
        )
    busy = measured.machine_busy / measured.machine_total
    print(
        f"    CPU: the event loop {measured.loop_cpu:.1f} s ({100 * measured.loop_cpu / span:.0f}% "
        f"of a core; {loop_ms:.2f} ms a model call, {bare_ms:.2f} ms in the baseline), this "
        f"process's threads {threads_cpu:.1f} s, the fake provider's process "
        f"{measured.fake_cpu:.1f} s, other processes {others:.1f} s: the machine "
        f"({measured.machine_total / span:.0f} cores) was {100 * busy:.0f}% busy"
    )
    print(
        f"    floor: the event loop's own CPU ({measured.loop_cpu:.1f} s, one thread) caps the "
        f"efficiency at {ideal / measured.loop_cpu:.2f} however idle the machine; this "
        f"process's CPU ({measured.process_cpu:.1f} s, mostly under one GIL) at about "
        f"{ideal / measured.process_cpu:.2f}"
    )
    return figures


# -- PostgreSQL with `tpc worker` processes ----------------------------------------------------


@contextmanager
def tpc_workers(count: int, url: str, concurrency: int, home: Path) -> Iterator[list[int]]:
    """`count` `tpc worker` processes on `url` (the provider variables from this environment),
    each with its share of the concurrency; their pids, once they all took their place in the
    queue. Stopped (SIGTERM) at the end."""
    share = str(math.ceil(concurrency / count))
    env = {
        **os.environ,
        "HOME": str(home),
        "TPC_DATABASE_URL": url,
        "TPC_CONCURRENCY": share,
        "TPC_PROVIDER_CONCURRENCY": share,
    }
    tpc = Path(sys.executable).with_name("tpc")
    logs = [home / f"worker-{i}.log" for i in range(count)]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    [str(tpc), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home
                )
            )
    try:
        _wait_for_workers(url, workers, logs)
        yield [worker.pid for worker in workers]
    finally:
        for worker in workers:
            worker.terminate()
        for worker, log in zip(workers, logs, strict=True):
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            if worker.returncode not in (0, -signal.SIGTERM):
                print(f"    {log.name} exited with {worker.returncode}:\n{log.read_text()[-2000:]}")


def _wait_for_workers(url: str, workers: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as db:
        while time.monotonic() < deadline:
            for worker, log in zip(workers, logs, strict=True):
                if worker.poll() is not None:
                    raise RuntimeError(f"{log.name} exited:\n{log.read_text()[-2000:]}")
            table = db.execute("SELECT to_regclass('procrastinate_workers')").fetchone()
            if table and table[0]:
                row = db.execute("SELECT COUNT(*) FROM procrastinate_workers").fetchone()
                if row and row[0] >= len(workers):
                    return
            time.sleep(0.2)
    raise RuntimeError(f"{len(workers)} workers did not start within 120 s")


async def _dispatch(service: Service, url: str, exp_id: str, number: int) -> None:
    """What `tpc serve --no-workers` does after a trigger: a job per run."""
    queue = open_queue(url)
    async with queue.open_async():
        await QueueDispatcher(service.runs, queue).submit(exp_id, number)
    with psycopg.connect(url, autocommit=True) as db:
        # The workers planned their fetch on an empty queue; autovacuum would analyze it later
        # (benchmarks/workers.py, `--no-analyze`).
        db.execute("ANALYZE procrastinate_jobs")


def distribute(url: str, setup: Setup, fake: Fake, docs: Path, workers: int) -> dict[str, Any]:
    """The iteration executed by `workers` `tpc worker` processes, each with its own event loop
    and SDK clients; this process only triggers, dispatches and watches the views."""
    service = Service(Settings(database_url=url))
    try:
        product, exp_id = prepare(service, setup, docs)
        with (
            tempfile.TemporaryDirectory(prefix="tpc-orchestration-workers-") as home,
            tpc_workers(workers, url, setup.concurrency, Path(home)) as pids,
        ):
            workers_cpu = sum(_process_cpu(pid) for pid in pids)
            fake_cpu = _process_cpu(fake.process.pid)
            busy, total = _machine_cpu()
            started = time.perf_counter()
            number = service.experiments.trigger(product, exp_id).iteration
            asyncio.run(_dispatch(service, url, exp_id, number))
            while True:
                time.sleep(0.05)  # the makespan to within this
                service.projector.catch_up()
                status = document(service.views.iteration_status(product, exp_id, number))
                if status["status"] != "running":
                    break
            span = time.perf_counter() - started
            workers_cpu = sum(_process_cpu(pid) for pid in pids) - workers_cpu
            fake_cpu = _process_cpu(fake.process.pid) - fake_cpu
            busy, total = _machine_cpu()[0] - busy, _machine_cpu()[1] - total
    finally:
        service.close()
    counts = {k: v for k, v in status["runs"].items() if v and k != "total"}
    calls = setup.runs * setup.steps
    print(
        f"  {setup.runs} runs × {setup.steps} steps, {1000 * setup.latency_s:g} ms a response, "
        f"concurrency {setup.concurrency} over {workers} workers: iteration {status['status']} "
        f"{counts}"
    )
    print(
        f"    ideal makespan {setup.ideal:.2f} s | measured {span:.2f} s | efficiency "
        f"{setup.ideal / span:.2f} (target >= 0.8) | {setup.runs / span:.1f} runs/s"
    )
    print(
        f"    CPU: the workers {workers_cpu:.1f} s ({1000 * workers_cpu / calls:.2f} ms a model "
        f"call, everything included), the fake provider's process {fake_cpu:.1f} s, the whole "
        f"machine {busy:.1f} s of {total:.1f} s ({100 * busy / total:.0f}% busy)"
    )
    return {
        "runs": setup.runs,
        "workers": workers,
        "status": status["status"],
        "counts": counts,
        "ideal_s": setup.ideal,
        "makespan_s": span,
        "efficiency": setup.ideal / span,
        "workers_cpu_s": workers_cpu,
        "fake_cpu_s": fake_cpu,
    }


# -- the command -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (40 runs × 3 steps)")
    parser.add_argument("--runs", type=int, help="runs in the iteration (default 1000)")
    parser.add_argument("--concurrency", type=int, help="executor concurrency (default 100)")
    parser.add_argument("--steps", type=int, help="model responses per run (default 10)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="per model response")
    parser.add_argument(
        "--poll", type=float, default=0.2, help="the log follower's interval, s (0: none)"
    )
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="as `tpc serve`: uvloop"
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN_URL,
        help="a PostgreSQL role that may create databases (default TPC_BENCH_POSTGRES_URL or "
        "%(default)s); the benchmark makes its own database and drops it",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--workers",
        type=int,
        help="PostgreSQL: this many `tpc worker` processes sharing the concurrency, instead of "
        "the in-process executor",
    )
    args = parser.parse_args(argv)
    setup = Setup(
        runs=args.runs or (40 if args.quick else 1000),
        concurrency=args.concurrency or (20 if args.quick else 100),
        steps=args.steps or (3 if args.quick else 10),
        latency_s=args.latency_ms / 1000,
        poll_s=args.poll,
    )
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tpc-orchestration-bench-") as tmp:
        work = Path(tmp)
        docs = work / "docs"
        docs.mkdir()
        for name, text in DOCS.items():
            (docs / name).write_text(text)
        with fake_provider(setup.latency_s, setup.steps) as fake, fake.in_environment():
            print(
                f"fake provider: tests.fakes.provider serving in a separate process (pid "
                f"{fake.process.pid}, {fake.url}), {1000 * setup.latency_s:g} ms a response: "
                "its CPU is not taken from the measured event loop"
            )
            if not args.no_sqlite:
                print("SQLite (a file in WAL mode):")
                figures["sqlite"] = orchestrate(work / "tpc.db", setup, fake, docs, args.loop)
            if not args.no_postgres:
                with postgres_database(args.postgres) as url:
                    if url is not None and args.workers:
                        print(f"PostgreSQL ({url}), {args.workers} `tpc worker` processes:")
                        figures["postgres"] = distribute(url, setup, fake, docs, args.workers)
                    elif url is not None:
                        print(f"PostgreSQL ({url}), the in-process executor:")
                        figures["postgres"] = orchestrate(url, setup, fake, docs, args.loop)
    return figures


if __name__ == "__main__":
    main()
