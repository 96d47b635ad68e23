"""Group commit (`infra/store/group_commit.py`) with a plain in-memory log as the insert:
saves queued while one is written go together, each with its own positions; a conflict in a
group fails only the saves that conflict."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from infra.store.group_commit import GroupCommit
from tests.eventually import eventually


class Log:
    """Appends keyed events; a key seen before is a conflict and nothing of the call lands.
    The first call waits for `release`, so that the test queues saves behind it."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_with: Exception | None = None

    def insert(self, events: Sequence[str]) -> Sequence[int]:
        self.calls.append(list(events))
        self.entered.set()
        self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        if set(events) & set(self.rows) or len(set(events)) < len(events):
            raise IntegrityError("duplicate key")
        start = len(self.rows)
        self.rows.extend(events)
        return list(range(start + 1, start + 1 + len(events)))


def queue_behind_first(
    group: GroupCommit[str], log: Log, first: list[str], others: list[list[str]]
) -> dict[int, Sequence[int] | BaseException | None]:
    """Saves `first` (which blocks in the insert), then `others` from threads of their own;
    releases the insert once every other save is queued."""
    outcomes: dict[int, Sequence[int] | BaseException | None] = {}

    def save(i: int, events: list[str]) -> None:
        try:
            outcomes[i] = group.insert(events)
        except BaseException as error:
            outcomes[i] = error

    threads = [threading.Thread(target=save, args=(0, first))]
    threads[0].start()
    assert log.entered.wait(10)
    for i, events in enumerate(others, start=1):
        threads.append(threading.Thread(target=save, args=(i, events)))
        threads[-1].start()
    eventually(
        lambda: len(group._queued) >= len(others),
        what="every other save queued, none written",
        interval=0.001,
    )
    log.release.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_saves_queued_meanwhile_are_written_in_one_call_with_their_own_positions() -> None:
    log = Log()
    group = GroupCommit(log.insert)
    outcomes = queue_behind_first(group, log, ["a"], [["b1", "b2"], ["c"], ["d1", "d2", "d3"]])
    assert log.calls[0] == ["a"] and len(log.calls) == 2
    assert sorted(log.calls[1]) == ["b1", "b2", "c", "d1", "d2", "d3"]
    assert outcomes[0] == [1]
    for i, events in enumerate([["b1", "b2"], ["c"], ["d1", "d2", "d3"]], start=1):
        positions = outcomes[i]
        assert isinstance(positions, list)
        assert [log.rows[p - 1] for p in positions] == events
    assert group.transactions == 2 and group.saves == 4


def test_a_conflict_in_a_group_fails_only_the_saves_that_conflict() -> None:
    log = Log()
    group = GroupCommit(log.insert)
    outcomes = queue_behind_first(group, log, ["a"], [["b"], ["a", "c"], ["d"]])
    assert outcomes[0] == [1]
    assert isinstance(outcomes[2], IntegrityError)
    assert sorted(log.rows) == ["a", "b", "d"]  # nothing of the conflicting save landed
    for i, event in ((1, "b"), (3, "d")):
        positions = outcomes[i]
        assert isinstance(positions, list) and [log.rows[p - 1] for p in positions] == [event]


def test_an_error_about_the_database_is_every_saves_error() -> None:
    log = Log()
    log.fail_with = OperationalError("lock timeout")
    group = GroupCommit(log.insert)
    outcomes = queue_behind_first(group, log, ["a"], [["b"], ["c"]])
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes.values())
    assert log.rows == []
    # The group is free again: the next save is written.
    log.fail_with = None
    assert group.insert(["e"]) == [1]


def test_a_save_alone_is_written_at_once() -> None:
    log = Log()
    log.release.set()
    group = GroupCommit(log.insert)
    assert group.insert(["a", "b"]) == [1, 2]
    with pytest.raises(IntegrityError):
        group.insert(["a"])
    assert log.calls == [["a", "b"], ["a"]]
