"""Requests that act on a token's remembered product before its check answers.

Under load on PostgreSQL every round trip is a wait for the GIL, and a read was two: the
token's check, then the query. A token acts for one product until it is revoked, so the
product it acted for last (in this process) is a good guess: the request runs on the guess,
and its first query goes to the database in one message with the token's check
(`Database.guarded`). The check decides, as before: its answer is read before any row is used
and before anything is written (every write path settles it first, the event store's saves
too), and a token revoked since gets its 401 from the full check, with nothing written.
Nothing here is an authority, only a guess.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from infra.store.database import GuardFailed
from projections.queries import Views

# Tokens remembered per process: the least recently used are forgotten first.
REMEMBERED_TOKENS = 4096


class OwnerGuess(NamedTuple):
    """A token's stored forms (`TokenHasher.candidates`) and the product it acted for last."""

    hashes: tuple[str, ...]
    product_id: str


class OwnerGuesses:
    def __init__(self, views: Views, capacity: int = REMEMBERED_TOKENS) -> None:
        self._views = views
        self._capacity = capacity
        self._owners: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, hashes: tuple[str, ...], product_id: str) -> None:
        """After a full check found the token live for `product_id`."""
        with self._lock:
            self._owners[hashes] = product_id
            self._owners.move_to_end(hashes)
            while len(self._owners) > self._capacity:
                self._owners.popitem(last=False)

    def guess(self, hashes: tuple[str, ...]) -> OwnerGuess | None:
        with self._lock:
            product_id = self._owners.get(hashes)
        return OwnerGuess(hashes, product_id) if product_id is not None else None

    @contextmanager
    def confirming(self, guess: OwnerGuess) -> Iterator[str]:
        """A block acting for the guessed product; `GuardFailed` (and the guess forgotten)
        unless the token's check, read with the block's first query or before its first
        write, confirms it."""
        try:
            with self._views.guarded(self._views.owner_guard(guess.hashes, guess.product_id)):
                yield guess.product_id
        except GuardFailed:
            with self._lock:
                self._owners.pop(guess.hashes, None)
            raise
