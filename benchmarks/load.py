"""Mixed load: many clients at once against one real `tpc serve`, on SQLite and on PostgreSQL in
the same run, so that the two stores are compared on the same machine at the same moment.

    .venv/bin/python benchmarks/load.py                         # 30 clients, 2 rounds × 30 s
    .venv/bin/python benchmarks/load.py --clients 10 --seconds 10 --rounds 1  # a short run
    .venv/bin/python benchmarks/load.py --no-sqlite             # PostgreSQL only
    .venv/bin/python benchmarks/load.py --mix list=4,results=3  # reads only

Each client loops until the time is up, choosing at random (weights in `MIX`): a list of
experiments, an iteration's results, an experiment's creation, or the trigger of a small
iteration of one of its own experiments (4 scripted runs of a few milliseconds, or 4 replay
runs). Everything is loopback: the server runs the iterations with its own executor (on
PostgreSQL: its in-process queue worker) and the fake agents need no provider.

The stores take turns, SQLite first in odd rounds and PostgreSQL first in even ones, so that
a machine that slows down or speeds up during the run weighs on both alike (a single pair of
measurements drifted by a quarter between runs); each round starts on a quiet machine, the
last round's writes on disk. It prints, per store and round, requests/s and p50/p99 per
operation, then over all rounds: PostgreSQL ÷ SQLite (with each round's own ratio), and per
operation p50/p99 of every request of the store's rounds; how many of the runs the triggers
queued ended while the load lasted (read from the event log); on PostgreSQL, what
the database's backends were doing (pg_stat_activity sampled every 50 ms:
`benchmarks/workers.py`'s classes), and the transactions per request. Nothing may be lost:
every experiment created is in the list afterwards, and every iteration triggered completes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.store import EXAMPLES, LABELS, POSTGRES_ADMIN_URL, postgres_database  # noqa: E402
from benchmarks.workers import (  # noqa: E402
    PY_SPY,
    TOKEN,
    PostgresMonitor,
    Processes,
    cpu_seconds,
    write_replay_dirs,
)

# Operation → weight: mostly reads, as a team's dashboards and CLIs make them.
MIX = {"list": 4, "results": 3, "create": 2, "trigger": 1}
TASKS = 4
# The runs of an iteration of the load's experiments: 2 of the tasks × 2 environments.
RUNS_PER_ITERATION = 4
SIGNALS = (EXAMPLES / "signals.yaml").read_text()


@dataclass
class Catalog:
    task_ids: list[str]
    env_ids: list[str]
    exp_id: str  # with a completed iteration 1, whose results the readers read


@dataclass
class Load:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    created: list[str] = field(default_factory=list)
    triggered: list[tuple[str, int]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def set_up(processes: Processes, client: httpx.Client, work: Path) -> Catalog:
    task_ids = []
    for i in range(TASKS):
        body = {
            "name": f"task-{i}",
            "prompt": f"question {i}",
            "success": {"final_answer_regex": "^Done"},
        }
        response = client.post("/v1/tasks", json=body)
        response.raise_for_status()
        task_ids.append(response.json()["id"])
    # One scripted environment (steps of 5 ms) and one replayed.
    agent = {"kind": "scripted", "skill": 0.8, "step_latency_s": 0.005}
    response = client.post("/v1/environments", json={"name": "scripted", "agent": agent})
    response.raise_for_status()
    folder = write_replay_dirs(work, TASKS)[LABELS[0]]
    replay = processes.tpc("sim", "env", "create", "--name", "replay", "--replay-dir", str(folder))
    env_ids = [response.json()["id"], replay["id"]]
    exp_id = create_body_experiment(client, task_ids, env_ids, "readers' experiment")
    number = client.post(f"/v1/experiments/{exp_id}/iterations").json()["iteration"]
    wait_completed(client, [(exp_id, number)], 120)
    return Catalog(task_ids, env_ids, exp_id)


def experiment_body(task_ids: list[str], env_ids: list[str], name: str) -> dict[str, Any]:
    return {
        "name": name,
        "task_ids": task_ids[:2],
        "env_ids": env_ids,
        "repeats": 1,
        "signal_config": SIGNALS,
    }


def create_body_experiment(
    client: httpx.Client, task_ids: list[str], env_ids: list[str], name: str
) -> str:
    response = client.post("/v1/experiments", json=experiment_body(task_ids, env_ids, name))
    response.raise_for_status()
    exp_id: str = response.json()["id"]
    return exp_id


def wait_completed(client: httpx.Client, iterations: list[tuple[str, int]], timeout: float) -> int:
    """Waits until every iteration left `running`; returns how many did not complete."""
    deadline = time.monotonic() + timeout
    pending = list(iterations)
    while pending and time.monotonic() < deadline:
        still = []
        for exp_id, number in pending:
            status = client.get(f"/v1/experiments/{exp_id}/iterations/{number}").json()
            if status["status"] == "running":
                still.append((exp_id, number))
            elif status["status"] != "completed":
                raise RuntimeError(f"iteration {exp_id}/{number}: {status['status']}")
        pending = still
        if pending:
            time.sleep(0.2)
    return len(pending)


async def client_loop(
    http: aiohttp.ClientSession,
    catalog: Catalog,
    load: Load,
    deadline: float,
    seed: int,
    mix: dict[str, int],
) -> None:
    rng = random.Random(seed)
    ops, weights = zip(*mix.items(), strict=True)
    mine: list[str] = []
    while time.monotonic() < deadline:
        op = rng.choices(ops, weights)[0]
        if op == "trigger" and not mine:
            op = "create"
        started = time.perf_counter()
        if op == "list":
            request = http.get("/v1/experiments", params={"limit": 20})
        elif op == "results":
            request = http.get(f"/v1/experiments/{catalog.exp_id}/iterations/1/results")
        elif op == "create":
            body = experiment_body(catalog.task_ids, catalog.env_ids, f"load {seed}-{len(mine)}")
            request = http.post("/v1/experiments", json=body)
        else:
            exp_id = mine.pop(rng.randrange(len(mine)))
            request = http.post(f"/v1/experiments/{exp_id}/iterations")
        async with request as response:
            answer = await response.read()
        elapsed = time.perf_counter() - started
        if response.status >= 400:
            load.errors[f"{op} {response.status}"] += 1
            continue
        load.latencies[op].append(elapsed)
        if op == "create":
            mine.append(json.loads(answer)["id"])
            load.created.append(mine[-1])
        elif op == "trigger":
            load.triggered.append((exp_id, json.loads(answer)["iteration"]))


async def drive(
    url: str, catalog: Catalog, clients: int, seconds: float, mix: dict[str, int]
) -> Load:
    """The clients, on aiohttp: its C parser costs the client a fraction of httpx's CPU, which
    would otherwise take a third of this machine's two cores from the server it measures."""
    load = Load(seconds)
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        url, headers=headers, connector=connector, timeout=timeout
    ) as http:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(client_loop(http, catalog, load, deadline, seed, mix) for seed in range(clients))
        )
        load.seconds = time.monotonic() - started
    return load


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


# Before a round: the longest wait for the machine to go quiet, and what quiet is (the share
# of the cores busy over a second).
SETTLE_S = 30
QUIET = 0.1

# py-spy's samples per second with --gil: each sample is 1 / GIL_RATE s of the GIL held.
GIL_RATE = 100


@dataclass(frozen=True)
class Profile:
    """Where py-spy's raw stacks go, and what it samples: every thread, waiting ones included
    (where a request's time goes), or with `gil` only the thread holding the GIL (what keeps
    the other threads waiting: on a loaded server, the cost of a request)."""

    folder: Path
    gil: bool = False


def profiled(
    pid: int, seconds: float, profile: Profile | None, name: str
) -> tuple[subprocess.Popen[bytes], Path] | None:
    if profile is None:
        return None
    if PY_SPY is None:
        print("  no profile: py-spy is not installed (.venv/bin/pip install py-spy)")
        return None
    profile.folder.mkdir(parents=True, exist_ok=True)
    output = profile.folder / f"serve-{name}.txt"
    mode = ["-r", str(GIL_RATE), "--gil"] if profile.gil else ["-r", "40", "--idle"]
    args = [PY_SPY, "record", "-p", str(pid), "-d", str(int(seconds)), *mode, "--nonblocking"]
    spy = subprocess.Popen([*args, "-f", "raw", "-o", str(output)], stdout=subprocess.DEVNULL)
    return spy, output


def gil_seconds(raw_stacks: Path) -> float:
    """The GIL time a `--gil` profile saw: its samples over their rate."""
    lines = raw_stacks.read_text().splitlines() if raw_stacks.exists() else []
    return sum(int(line.rpartition(" ")[2]) for line in lines if line.strip()) / GIL_RATE


def measure(
    name: str,
    database_url: str,
    clients: int,
    seconds: float,
    mix: dict[str, int],
    admin_url: str | None,
    profile: Profile | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tpc-load-") as folder:
        work = Path(folder)
        processes = Processes(work, database_url, concurrency=16)
        # The operator's guard is not what is measured: over a minute the triggers outpace the
        # runs (iterations finish after the load, and are waited for), so it must not bind.
        processes.env["TPC_MAX_RUNNING_ITERATIONS"] = "1000000"
        monitor = PostgresMonitor(admin_url, database_url) if admin_url else None
        try:
            processes.serve(no_workers=False)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=processes.url, headers=headers, timeout=120) as client:
                catalog = set_up(processes, client, work)
                if monitor:
                    monitor.start()
                assert processes.server is not None
                server_cpu = cpu_seconds(processes.server.pid) or 0.0
                clients_cpu, machine = time.process_time(), machine_jiffies()
                spy = profiled(processes.server.pid, seconds, profile, name)
                load = asyncio.run(drive(processes.url, catalog, clients, seconds, mix))
                server_cpu = (cpu_seconds(processes.server.pid) or 0.0) - server_cpu
                clients_cpu = time.process_time() - clients_cpu
                machine_busy = busy_share(machine, machine_jiffies())
                finished_in_time = finished_runs(database_url)
                if spy is not None:
                    spy[0].wait(timeout=60)
                database_cpu = None
                if monitor:
                    monitor.stop_sampling()
                    database_cpu = monitor.backend_cpu()
                unfinished = wait_completed(client, load.triggered, 300)
                if unfinished:
                    # What the server said is the only account of why: its folder goes below.
                    print(f"  {unfinished} iterations unfinished; the server's log ends:")
                    print(textwrap.indent(processes.log_tail("serve", 60), "    "), flush=True)
                listed: set[str] = set()
                cursor = None
                while True:
                    params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                    page = client.get("/v1/experiments", params=params).json()
                    listed.update(item["id"] for item in page["items"])
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
        finally:
            processes.stop()
        costs = monitor.finish(max(1, load.requests)) if monitor else {}
    lost = len(set(load.created) - listed)
    figures = {
        "store": name,
        "clients": clients,
        "seconds": load.seconds,
        "requests": load.requests,
        "rate": load.rate,
        "ops": op_figures(load.latencies, load.seconds),
        "latencies": {op: values for op, values in load.latencies.items()},
        "errors": dict(load.errors),
        "experiments_lost": lost,
        "iterations_unfinished": unfinished,
        # Of the runs the load's triggers queued (4 an iteration), those ended by its end.
        "runs_queued": RUNS_PER_ITERATION * len(load.triggered),
        "runs_finished_in_time": finished_in_time - RUNS_PER_ITERATION,  # less the set-up's
        # CPU seconds used during the load, by the server, the clients (this process, with
        # the pg_stat_activity sampler on PostgreSQL) and PostgreSQL's backends; and the share
        # of the machine's cores busy (a saturated machine bounds requests/s by the CPU a
        # request costs, wherever it is spent).
        "server_cpu_s": server_cpu,
        "clients_cpu_s": clients_cpu,
        "machine_busy": machine_busy,
        "gil_s": gil_seconds(spy[1]) if spy is not None and profile and profile.gil else None,
        "database_cpu_s": database_cpu,
        "costs": costs,
    }
    print_figures(figures)
    return figures


def settle(admin_url: str | None) -> None:
    """Start a round on a quiet machine: what the last one wrote flushed (PostgreSQL's
    checkpoint included), then up to `SETTLE_S` for the cores to go idle. A round that followed
    a PostgreSQL one otherwise paid for that one's writes still going to disk."""
    if admin_url:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as db,
        ):
            db.execute("CHECKPOINT")
    os.sync()
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        before = machine_jiffies()
        time.sleep(1)
        busy = busy_share(before, machine_jiffies())
        if busy is None or busy < QUIET:
            return


def machine_jiffies() -> tuple[int, int]:
    """(busy, all) clock ticks of every core so far, from /proc/stat (zeros elsewhere)."""
    try:
        ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total > 0 else None


def finished_runs(database_url: str) -> int:
    """Runs ended so far, read from the event log itself (the views may lag): the stores
    name its table as the event library does (SQLite `stored_events`, PostgreSQL
    `tpc_events`)."""
    ended = "topic IN ('tpc:Run.Completed', 'tpc:Run.Cancelled')"
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute(f"SELECT COUNT(*) FROM stored_events WHERE {ended}").fetchone()
    else:
        with psycopg.connect(database_url) as db:
            row = db.execute(f"SELECT COUNT(*) FROM tpc_events WHERE {ended}").fetchone()
    return int(row[0]) if row else 0


def op_figures(latencies: dict[str, list[float]], seconds: float) -> dict[str, Any]:
    return {
        op: {
            "count": len(values),
            "rate": len(values) / seconds,
            "p50_ms": 1000 * percentile(values, 50),
            "p99_ms": 1000 * percentile(values, 99),
        }
        for op, values in sorted(latencies.items())
    }


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One store's rounds as one measurement: requests over seconds, percentiles over every
    request, the losses and errors added up (the database's costs are the last round's)."""
    if len(rounds) == 1:
        return rounds[0]
    seconds = sum(r["seconds"] for r in rounds)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for r in rounds:
        for op, values in r["latencies"].items():
            latencies[op].extend(values)
        for error, count in r["errors"].items():
            errors[error] += count
    cpu = [r["database_cpu_s"] for r in rounds]
    gil = [r["gil_s"] for r in rounds]
    busy = [r["machine_busy"] for r in rounds]
    return {
        **rounds[-1],
        "seconds": seconds,
        "requests": sum(r["requests"] for r in rounds),
        "rate": sum(r["requests"] for r in rounds) / seconds,
        "ops": op_figures(latencies, seconds),
        "latencies": dict(latencies),
        "errors": dict(errors),
        "experiments_lost": sum(r["experiments_lost"] for r in rounds),
        "iterations_unfinished": sum(r["iterations_unfinished"] for r in rounds),
        "runs_queued": sum(r["runs_queued"] for r in rounds),
        "runs_finished_in_time": sum(r["runs_finished_in_time"] for r in rounds),
        "server_cpu_s": sum(r["server_cpu_s"] for r in rounds),
        "clients_cpu_s": sum(r["clients_cpu_s"] for r in rounds),
        "machine_busy": None if None in busy else sum(busy) / len(busy),
        "database_cpu_s": None if None in cpu else sum(cpu),
        "gil_s": None if None in gil else sum(gil),
        "rounds": len(rounds),
    }


def print_figures(f: dict[str, Any]) -> None:
    print(
        f"  {f['requests']:,} requests in {f['seconds']:.1f} s: {f['rate']:.0f} requests/s"
        f" ({f['clients']} clients); lost experiments {f['experiments_lost']},"
        f" unfinished iterations {f['iterations_unfinished']}, errors {f['errors'] or 'none'}"
    )
    print(
        f"    runs ended during the load: {f['runs_finished_in_time']:,} of the"
        f" {f['runs_queued']:,} its triggers queued (the rest end after it, and are waited for)"
    )
    database, gil, busy = f["database_cpu_s"], f["gil_s"], f["machine_busy"]
    print(
        f"    CPU: server {f['server_cpu_s']:.1f} s"
        + (f", PostgreSQL {database:.1f} s" if database is not None else "")
        + f", clients {f['clients_cpu_s']:.1f} s in {f['seconds']:.1f} s"
        + (f", machine {100 * busy:.0f}% busy" if busy is not None else "")
        + (f"; GIL held {1000 * gil / f['requests']:.2f} ms a request" if gil else "")
    )
    for op, o in f["ops"].items():
        print(
            f"    {op:8} {o['count']:6,} ({o['rate']:5.0f}/s)  p50 {o['p50_ms']:7.1f} ms"
            f"  p99 {o['p99_ms']:7.1f} ms"
        )
    costs = f["costs"]
    if costs:
        print(
            f"    per request: {costs['commits']:.1f} commits, {costs['inserted']:.1f} rows"
            f" inserted, {costs['updated']:.1f} updated"
        )
        print("    backends (average number at a sample):")
        for kind, share in costs["activity"].items():
            print(f"      {share:5.2f}  {kind}")
        for query, share in costs["holders"]:
            print(f"      {share:5.2f}  idle in transaction after: {query}")


def compare(
    sqlite: dict[str, Any], postgres: dict[str, Any], rounds: list[float]
) -> dict[str, Any]:
    ratio = postgres["rate"] / sqlite["rate"]
    each = f" (rounds: {', '.join(f'{r:.2f}' for r in rounds)})" if len(rounds) > 1 else ""
    print(f"PostgreSQL ÷ SQLite requests/s: {ratio:.2f}{each}")
    for op in sqlite["ops"]:
        if op in postgres["ops"]:
            s, p = sqlite["ops"][op], postgres["ops"][op]
            print(
                f"  {op:8} p50 {p['p50_ms']:.0f} vs {s['p50_ms']:.0f} ms,"
                f" p99 {p['p99_ms']:.0f} vs {s['p99_ms']:.0f} ms"
            )
    return {"rate_ratio": ratio, "round_ratios": rounds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30.0, help="of each round")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN_URL,
        help="a PostgreSQL role that may create databases (default TPC_BENCH_POSTGRES_URL or "
        "postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="turns each store takes, alternating (default 2)"
    )
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=MIX,
        help="the operations' weights, e.g. list=4,results=3 (default: "
        + ",".join(f"{op}={weight}" for op, weight in MIX.items())
        + ")",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server during each load (raw stacks here)"
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL, and print its time",
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--clients and --rounds must be at least 1, --seconds more than 0")
    if args.gil and args.profile is None:
        parser.error("--gil needs --profile DIR")
    profile = Profile(args.profile, args.gil) if args.profile else None
    skipped = {"sqlite": args.no_sqlite, "postgres": args.no_postgres}
    stores = [store for store, skip in skipped.items() if not skip]
    rounds: dict[str, list[dict[str, Any]]] = {store: [] for store in stores}
    for number in range(args.rounds):
        for store in stores if number % 2 == 0 else stores[::-1]:
            turn = f"round {number + 1} of {args.rounds}"
            settle(None if args.no_postgres else args.postgres)
            figures = measure_store(store, args, turn, profile)
            if figures is not None:
                rounds[store].append(figures)
    result: dict[str, Any] = {store: pooled(done) for store, done in rounds.items() if done}
    if len(result) == 2:
        if args.rounds > 1:
            for store, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
                print(f"{label}, {args.rounds} rounds:")
                print_figures(result[store])
        ratios = [
            p["rate"] / s["rate"] for s, p in zip(rounds["sqlite"], rounds["postgres"], strict=True)
        ]
        result["compare"] = compare(result["sqlite"], result["postgres"], ratios)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def parse_mix(text: str) -> dict[str, int]:
    """`op=weight,...` over `MIX`'s operations (a trigger with no experiment of its own yet
    creates one first)."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        op, _, weight = part.partition("=")
        if op.strip() not in MIX or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"{part!r}: want OP=WEIGHT, OP one of {', '.join(MIX)}"
            )
        mix[op.strip()] = int(weight)
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("at least one weight above 0")
    return mix


def measure_store(
    store: str, args: argparse.Namespace, turn: str, profile: Profile | None
) -> dict[str, Any] | None:
    """One turn of one store: SQLite in a file of its own, PostgreSQL in a new database (None
    when PostgreSQL cannot be reached)."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tpc-load-db-") as folder:
            print(f"SQLite, {args.clients} clients × {args.seconds:.0f} s, {turn}:")
            url = f"sqlite:///{Path(folder) / 'store.db'}"
            return measure("sqlite", url, args.clients, args.seconds, args.mix, None, profile)
    with postgres_database(args.postgres) as pg_url:
        if pg_url is None:
            return None
        print(f"PostgreSQL ({pg_url}), {args.clients} clients × {args.seconds:.0f} s, {turn}:")
        return measure(
            "postgres", pg_url, args.clients, args.seconds, args.mix, args.postgres, profile
        )


if __name__ == "__main__":
    main()
