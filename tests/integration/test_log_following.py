"""The server's log follower (`_follow_log`) keeps the views current with events other
processes write (a worker saves without catching up): woken by PostgreSQL's NOTIFY, and by a
poll when a notification is lost or the store cannot notify (SQLite)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager

import pytest

from api.http.app import _follow_log
from application.catalog_commands import token_hash
from application.service import Service
from domain.catalog import Product
from infra.settings import Settings
from projections.follower import TRACKING_NAME
from tests.conftest import store_kind
from tests.eventually import eventually_async

DEADLINE_S = 30.0  # how long a test waits for what must happen (never a measured time)


def services(url: str) -> Iterator[tuple[Service, Service]]:
    """A reader that follows the log (a server) and a writer that saves without catching up
    (a worker), on the same store."""
    reader = Service(Settings(database_url=url))
    writer = Service(Settings(database_url=url))
    yield reader, writer
    writer.close()
    reader.close()


@pytest.fixture
def pair(store_url: str) -> Iterator[tuple[Service, Service]]:
    yield from services(store_url)


@pytest.fixture
def postgres_pair(postgres_url: str) -> Iterator[tuple[Service, Service]]:
    yield from services(postgres_url)


async def eventually(check: Callable[[], bool], what: str) -> None:
    await eventually_async(
        lambda: asyncio.to_thread(check), what=what, timeout=DEADLINE_S, interval=0.02
    )


@asynccontextmanager
async def following(service: Service, interval: float) -> AsyncIterator[None]:
    task = asyncio.create_task(_follow_log(service, interval))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def save_product(writer: Service, reader: Service) -> Callable[[], bool]:
    """A worker-style save (no catch-up); returns the check that the reader's views have it."""
    token = secrets.token_hex(8)
    writer.store.save(Product(public_id=f"prd_{token}", name="p", token_hash=token_hash(token)))
    return lambda: reader.views.product_for_token_hash(token_hash(token)) is not None


def listeners(service: Service) -> list[int]:
    """Backends LISTENing on this database (the log watchers)."""
    rows = service.database.read(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
    )
    return [row[0] for row in rows]


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_a_notification_wakes_the_follower(postgres_pair: tuple[Service, Service]) -> None:
    """With an hour-long poll interval, only NOTIFY can bring the other process's event."""
    reader, writer = postgres_pair

    async def scenario() -> None:
        async with following(reader, interval=3600):
            await eventually(lambda: bool(listeners(writer)), "the follower listens")
            for _ in range(3):
                seen = await asyncio.to_thread(save_product, writer, reader)
                await eventually(seen, "the notified follower applies the event")

    run(scenario)


def test_a_lost_notification_is_made_up_by_the_poll(
    pair: tuple[Service, Service], store_url: str
) -> None:
    """On PostgreSQL the listening connection is killed, so the save's NOTIFY reaches nobody:
    the poll still brings the event, and the follower listens again. On SQLite (no
    notifications) the poll is all there is."""
    reader, writer = pair
    postgres = store_kind(store_url) == "postgresql"

    async def scenario() -> None:
        async with following(reader, interval=0.2):
            if postgres:
                await eventually(lambda: bool(listeners(writer)), "the follower listens")
                (killed,) = listeners(writer)
                writer.database.read("SELECT pg_terminate_backend(?)", (killed,))
            seen = await asyncio.to_thread(save_product, writer, reader)
            await eventually(seen, "the polling follower applies the event")
            if postgres:
                await eventually(
                    lambda: listeners(writer) not in ([], [killed]), "the follower listens again"
                )
            seen = await asyncio.to_thread(save_product, writer, reader)
            await eventually(seen, "the follower applies the next event")

    run(scenario)


def test_wait_for_events_wakes_on_a_save_where_the_store_notifies(
    pair: tuple[Service, Service], store_url: str
) -> None:
    reader, writer = pair
    assert reader.projector.wait_for_events(0.01) is False  # starts listening; nothing new
    save_product(writer, reader)
    if store_kind(store_url) == "postgresql":
        assert reader.projector.wait_for_events(DEADLINE_S) is True
        assert reader.projector.wait_for_events(0.01) is False  # one save, one wake-up
    else:
        assert reader.projector.wait_for_events(0.01) is False  # SQLite only polls
    reader.projector.catch_up()
    assert reader.projector.position() == writer.store.last_position()


def test_a_catch_up_watches_another_process_hold_the_projector_lock(
    postgres_pair: tuple[Service, Service],
) -> None:
    """A catch-up that needs the views only up to a position does not queue for the
    projector's lock another process holds: when the views are there already it returns at
    once (this test would hang otherwise), and when they are not it applies the rest as soon
    as the lock is free."""
    reader, writer = postgres_pair
    seen = save_product(writer, reader)
    head = reader.projector.catch_up()
    assert seen()
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with writer.database.write() as db:
            writer.database.lock(db, TRACKING_NAME)
            held.set()
            release.wait(DEADLINE_S)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(DEADLINE_S)
        assert reader.projector.catch_up(until=head) == head
        later = save_product(writer, reader)
        reached: list[int] = []
        follower = threading.Thread(
            target=lambda: reached.append(reader.projector.catch_up_to_head())
        )
        follower.start()
        assert not later()  # nothing could apply it while the lock is held
    finally:
        release.set()
        holder.join()
    follower.join(DEADLINE_S)
    assert reached == [writer.store.last_position()] and later()
