"""Concurrent appends to the PostgreSQL event log: how the way a save takes the event table's
lock changes what many writers get, measured before choosing it.

    .venv/bin/python benchmarks/appends.py                      # 16 threads × 10 s per way
    .venv/bin/python benchmarks/appends.py --threads 4 --seconds 5

Threads of one process save new aggregates (one event each) as fast as they can, through
`EventStore.save`, in three ways on a fresh database each:

- `eventsourcing`: the library's append (a pipelined transaction: lock, NOTIFY, INSERT, sync,
  COMMIT; the lock is held across two client round trips);
- `one statement`: tpc's function (`infra/store/pg_recorder.py`), each save alone;
- `grouped`: the same function, saves arriving together written together (group commit).

Every way takes `LOCK TABLE … IN EXCLUSIVE MODE`. It prints saves/s and p50/p99 per save, and
checks the log: as many events as saves, each position once; and how many saves each
transaction carried.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.store import POSTGRES_ADMIN_URL, postgres_database  # noqa: E402
from domain.experiments import Experiment  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.store.events import EventStore  # noqa: E402
from infra.store.group_commit import GroupCommit  # noqa: E402
from infra.store.opening import open_database  # noqa: E402
from infra.store.pg_recorder import PostgresEventRecorder  # noqa: E402
from infra.store.postgres import PostgresDatabase  # noqa: E402

WAYS = ("eventsourcing", "one statement", "grouped")


class LibraryAppends(PostgresDatabase):
    """The database with eventsourcing's own recorder."""

    def event_store_env(self) -> dict[str, str]:
        env = super().event_store_env()
        del env["APPLICATION_RECORDER_TOPIC"]
        return env


class Ungrouped(GroupCommit[Any]):
    """Each save written alone."""

    def insert(self, events: Sequence[Any]) -> Sequence[int] | None:
        self.saves += 1
        return self._call(events)


def appends(url: str, way: str, threads: int, seconds: float) -> dict[str, float]:
    settings = Settings(database_url=url)
    database = open_database(settings)
    assert isinstance(database, PostgresDatabase)
    if way == "eventsourcing":
        database.close()
        database = LibraryAppends(settings.postgres_params, settings.postgres)
    store = EventStore(database)
    recorder = store.recorder
    if way == "one statement":
        assert isinstance(recorder, PostgresEventRecorder)
        recorder.group_commit = Ungrouped(recorder._append)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def write(mine: list[float], n: int) -> None:
        start.wait()
        i = 0
        while time.monotonic() < deadline:
            aggregate = Experiment(
                public_id=f"exp_{n}_{i}", product_id="prd_bench", name="x", repeats=1
            )
            began = time.perf_counter()
            store.save(aggregate)
            mine.append(time.perf_counter() - began)
            i += 1

    workers = [threading.Thread(target=write, args=(latencies[n], n)) for n in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + seconds
    began = time.monotonic()
    start.wait()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began
    every = sorted(x for mine in latencies for x in mine)
    group = getattr(recorder, "group_commit", None)
    grouped = group.saves / group.transactions if group and group.transactions else 1.0
    ids = [n.id for n in store.notifications(0, len(every) + 10)]
    assert len(ids) == len(every) == len(set(ids)), (len(ids), len(every))
    store.close()
    database.close()
    cuts = statistics.quantiles(every, n=100, method="inclusive")
    return {
        "saves_per_s": len(every) / elapsed,
        "p50_ms": 1000 * cuts[49],
        "p99_ms": 1000 * cuts[98],
        "saves": len(every),
        "saves_per_transaction": grouped,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args(argv)
    figures: dict[str, dict[str, float]] = {}
    print(f"{args.threads} threads × {args.seconds:.0f} s, one event per save:")
    for way in WAYS:
        with postgres_database(args.postgres) as url:
            if url is None:
                return figures
            f = appends(url, way, args.threads, args.seconds)
        figures[way] = f
        print(
            f"  {way:14} {f['saves_per_s']:7.0f} saves/s  p50 {f['p50_ms']:6.1f} ms"
            f"  p99 {f['p99_ms']:6.1f} ms  ({f['saves']:,} saves, each position once;"
            f" {f['saves_per_transaction']:.1f} saves per transaction)"
        )
    return figures


if __name__ == "__main__":
    main()
