"""How a command saves: one atomic save, then the views caught up; retried on a conflict.

Shared by every command part (catalog, experiments, run recording), so each saves the same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing.persistence import IntegrityError

from domain.errors import StorageFull
from infra.store.events import EventStore
from projections.follower import Projector

T = TypeVar("T")
# How often a command is retried when another writer changed the same stream first, and the
# longest pause between two tries.
CONFLICT_RETRIES = 20
CONFLICT_BACKOFF_MAX_S = 0.05
VIEWS_FULL = (
    "the store is out of space: the change was saved, but the views cannot show it until "
    "space is freed (do not send it again)"
)


class Saver:
    """Saves aggregates into `store` and brings `projector`'s views up to the save."""

    def __init__(self, store: EventStore, projector: Projector) -> None:
        self.store = store
        self.projector = projector

    def save(self, *aggregates: Any) -> None:
        """Save, then bring the views up to date: the caller reads its own write."""
        recordings = self.store.save(*aggregates)
        try:
            self.projector.catch_up(
                until=max((r.notification.id for r in recordings), default=None)
            )
        except StorageFull:
            # The events are in the log, whole; only the views (written next) found no room.
            raise StorageFull(VIEWS_FULL) from None

    def retrying(self, command: Callable[[], T]) -> T:
        """Run a command again on a write conflict (optimistic concurrency, no lost update)."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return command()
            except IntegrityError:
                # A random pause, growing: writers that lost together do not collide again in
                # lockstep, and a busy stream's losers cannot all run out of tries.
                time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_MAX_S, 0.001 * 2**attempt)))
        return command()
