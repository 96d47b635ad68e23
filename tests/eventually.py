"""Waiting for something to happen, without guessing how long it takes.

A test that waits polls a condition until it holds, then goes on at once; a busy machine only
makes it wait longer, never fail, unless the condition never holds within the timeout (which
names what was awaited). Never a fixed sleep in its place.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT_S = 30.0
INTERVAL_S = 0.05


def eventually(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout: float = TIMEOUT_S,
    interval: float = INTERVAL_S,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` until it returns something truthy, and return that. `ignoring`: errors
    that mean "not yet" (a server that is still starting refuses connections)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignoring:
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {value!r})")
        time.sleep(interval)


async def eventually_async(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    what: str,
    timeout: float = TIMEOUT_S,  # noqa: ASYNC109 (the signature of eventually())
    interval: float = INTERVAL_S,
) -> T:
    """`eventually` inside an event loop: a coroutine predicate is awaited, a plain one runs
    on the loop (keep it quick: wrap blocking calls in `asyncio.to_thread`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {value!r})")
        await asyncio.sleep(interval)
