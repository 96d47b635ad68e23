"""The Starlette application factory: REST API, OpenAPI document, and the lifespan that owns
the store, the projections' poll loop and the in-process executor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.credentials import save_token
from api.http.body_limit import BodyLimit
from api.http.errors import EXCEPTION_HANDLERS, InternalErrors
from api.http.openapi import openapi_document
from api.http.routes import ROUTES
from api.web.pages import web_routes
from api.web.security_headers import SecurityHeaders
from application.executor import Executor
from application.queue_worker import QueueDispatcher
from application.service import Service
from application.worker_process import build_worker
from infra.llm.judge import LlmJudge
from infra.run_queue import ensure_queue_schema, open_queue
from infra.runners.registry import build_runners
from infra.settings import Settings
from projections.follower import Projector

log = logging.getLogger("tpc.server")

INFO = {"title": "tpc sim API", "version": "1"}


async def healthz(request: Request) -> JSONResponse:
    """Up, and how far the views follow the log: `failures` counts the events they could not
    apply and skipped (`tpc projections status` lists them)."""
    body: dict[str, object] = {"status": "ok"}
    service: Service | None = getattr(request.app.state, "service", None)
    if service is not None:
        projector = service.projector
        # At most a second old: a health check stays the cheapest request there is.
        body["projection"] = projector.recent_health() or await asyncio.to_thread(projector.health)
    return JSONResponse(body)


async def openapi(request: Request) -> JSONResponse:
    state = request.app.state
    if not hasattr(state, "openapi"):  # the routes never change: built once
        state.openapi = openapi_document(request.app.routes, INFO)
    return JSONResponse(state.openapi)


def bootstrap(service: Service, settings: Settings) -> None:
    """Create the first product on an empty store; tell the user its token if we made it."""
    created = service.catalog.bootstrap(settings.api_token)
    if created is not None and created.token is not None:
        note = save_token(settings.credentials_path, settings.api_url, created.token)
        print(
            f"Created product {created.product_id}; its API token is {created.token}\n"
            f"(saved to {settings.credentials_path} for {settings.api_url}, where `tpc` finds it)"
            + (f"\n{note}" if note else ""),
            file=sys.stderr,
            flush=True,
        )


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = await asyncio.to_thread(Service, settings)
        await asyncio.to_thread(bootstrap, service, settings)
        app.state.service = service
        poller = asyncio.create_task(_follow_log(service, settings.poll_interval_s))
        try:
            if settings.is_postgres:
                async with _queue_runs(app, service, settings):
                    yield
            else:
                async with _execute_in_process(app, service, settings):
                    yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await asyncio.to_thread(service.close)

    routes = [
        Route("/healthz", healthz, include_in_schema=False),
        Route("/openapi.json", openapi, include_in_schema=False),
        *ROUTES,
        *web_routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        # Outermost first: every answer, a 500 included, gets the security headers.
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(InternalErrors),
            Middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes),
        ],
    )
    app.state.limits = settings.limits
    return app


@contextlib.asynccontextmanager
async def _execute_in_process(
    app: Starlette, service: Service, settings: Settings
) -> AsyncIterator[None]:
    """The embedded store: this process executes the runs (unless `--no-workers`)."""
    executor = None
    if settings.run_workers:
        runners = build_runners(service.blobs.get)
        executor = Executor(service.runs, runners, settings.concurrency, judge=LlmJudge())
        await executor.resume()
    app.state.executor = executor
    try:
        yield
    finally:
        if executor is not None:
            await executor.stop()


@contextlib.asynccontextmanager
async def _queue_runs(app: Starlette, service: Service, settings: Settings) -> AsyncIterator[None]:
    """PostgreSQL: runs go through the job queue; this process also works them off unless
    `--no-workers` (then only `tpc worker` processes do)."""
    queue = open_queue(settings.database_url)
    async with queue.open_async():
        await ensure_queue_schema(queue)
        dispatcher = QueueDispatcher(service.runs, queue)
        app.state.executor = dispatcher
        await dispatcher.resume()
        worker = None
        if settings.run_workers:
            worker = build_worker(service.runs, settings, queue, install_signal_handlers=False)
            working = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            await dispatcher.stop()
            if worker is not None:
                worker.stop()
                await asyncio.gather(working, return_exceptions=True)


async def _follow_log(service: Service, interval: float) -> None:
    """Keep the views current with events other processes write (workers, other servers, a
    rebuild): wake on PostgreSQL's NOTIFY, or after `interval` at the latest, since SQLite
    cannot notify and a NOTIFY can be lost. Until cancelled, in a thread of its own that never
    passes the event loop: under load the NOTIFY of nearly every save wakes it, and each pass
    through the loop would wait behind the requests' turns and delay theirs."""
    stopped = threading.Event()
    follower = threading.Thread(
        target=_follow, args=(service.projector, interval, stopped), name="tpc-log-follower"
    )
    follower.start()
    try:
        await asyncio.Future()
    finally:
        stopped.set()
        await asyncio.to_thread(_stop_following, service.projector, follower)


def _follow(projector: Projector, interval: float, stopped: threading.Event) -> None:
    while not stopped.is_set():
        try:
            projector.wait_for_events(interval)
            if not stopped.is_set():
                projector.catch_up_to_head()
        except Exception:
            log.exception("projection catch-up failed; retrying")
            stopped.wait(interval)


def _stop_following(projector: Projector, follower: threading.Thread) -> None:
    projector.close()  # ends the wait in progress (within a slice of the watcher's)
    follower.join()
