"""The live-log writer: every run's messages in one save per interval, message indexes kept per
run, a run refused by the store stops only its own live log, and closing a log lets a save
under way land first (the run's outcome is saved next, on the same aggregate)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from application.live_log import MAX_LIVE_TEXT, LiveBatch, LiveLogWriter
from tests.eventually import eventually_async


class Store:
    """Records each batch it is asked to save; refuses the runs named in `refuse`."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.batches: list[list[tuple[str, int, list[dict[str, Any]]]]] = []
        self.refuse = refuse or set()
        self.release = threading.Event()
        self.release.set()

    def save(self, batch: LiveBatch) -> list[Any]:
        self.release.wait()
        self.batches.append([(run, first, list(messages)) for run, first, messages in batch])
        return [run for run, _, _ in batch if run in self.refuse]


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


async def until(condition: Any) -> None:
    """Wait for the writer to get there (a busy machine may take a while; never timed)."""
    await eventually_async(condition, what="the writer got there", interval=0.005)


def test_every_runs_messages_go_in_one_save_per_interval() -> None:
    store = Store()

    async def scenario() -> None:
        writer = LiveLogWriter(store.save, interval_s=0.05)
        logs = {run: writer.open(run) for run in ("a", "b", "c")}
        for run, live in logs.items():
            live.message(say(f"{run}0"))
            live.message(say(f"{run}1"))
        await until(lambda: store.batches)  # the first save: everything reported so far
        logs["a"].message(say("a2"))
        logs["b"].message(say("b2"))
        await until(lambda: len(store.batches) == 2)
        for live in logs.values():
            await live.close()

    asyncio.run(scenario())
    assert [[(run, first, len(m)) for run, first, m in batch] for batch in store.batches] == [
        [("a", 0, 2), ("b", 0, 2), ("c", 0, 2)],
        [("a", 2, 1), ("b", 2, 1)],
    ]


def test_a_refused_run_stops_only_its_own_live_log() -> None:
    store = Store(refuse={"stale"})

    async def scenario() -> list[str]:
        writer = LiveLogWriter(store.save, interval_s=0.01)
        stale, fresh = writer.open("stale"), writer.open("fresh")
        stale.message(say("s0"))
        fresh.message(say("f0"))
        await until(lambda: stale.broken)
        stale.message(say("s1"))  # not saved: its log stopped
        fresh.message(say("f1"))
        await until(lambda: len(store.batches) == 2)
        await stale.close()
        await fresh.close()
        return [m["content"] for m in stale.reported]

    reported = asyncio.run(scenario())
    assert reported == ["s0", "s1"]  # the run itself keeps everything it reported
    assert [[(run, first) for run, first, _ in batch] for batch in store.batches] == [
        [("stale", 0), ("fresh", 0)],
        [("fresh", 1)],
    ]


def test_closing_a_log_waits_for_the_save_under_way() -> None:
    store = Store()
    store.release.clear()

    async def scenario() -> int:
        writer = LiveLogWriter(store.save, interval_s=0.01)
        live = writer.open("run")
        live.message(say("one"))
        await asyncio.sleep(0)  # the save starts, and waits in its thread
        asyncio.get_running_loop().call_later(0.05, store.release.set)
        await live.close()
        return len(store.batches)

    assert asyncio.run(scenario()) == 1


def test_a_failing_store_stops_the_live_logs_not_the_runs() -> None:
    def broken(batch: LiveBatch) -> list[Any]:
        raise OSError("the database went away")

    async def scenario() -> list[str]:
        writer = LiveLogWriter(broken, interval_s=0.01)
        live = writer.open("run")
        live.message(say("one"))
        await until(lambda: live.broken)
        live.message(say("two"))
        await live.close()
        return [m["content"] for m in live.reported]

    assert asyncio.run(scenario()) == ["one", "two"]


def test_long_texts_are_cut_in_live_messages_only() -> None:
    store = Store()
    long = "x" * (MAX_LIVE_TEXT + 10)

    async def scenario() -> str:
        writer = LiveLogWriter(store.save, interval_s=0.01)
        live = writer.open("run")
        live.message(say(long))
        await until(lambda: store.batches)
        await live.close()
        content: str = live.reported[0]["content"]
        return content

    assert asyncio.run(scenario()) == long
    saved = store.batches[0][0][2][0]["content"]
    assert saved == "x" * MAX_LIVE_TEXT + "… [10 more characters]"
