"""The Starlette application factory: REST API, OpenAPI document, and the lifespan that owns
the store, the projections' poll loop and the in-process executor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from api.http.errors import EXCEPTION_HANDLERS
from api.http.routes import ROUTES
from api.web.pages import web_routes
from infra.executor import Executor
from infra.llm.judge import LlmJudge
from infra.runners.registry import build_runners
from infra.service import Service
from infra.settings import Settings

log = logging.getLogger("tpc.server")

SCHEMAS = SchemaGenerator(
    {
        "openapi": "3.0.0",
        "info": {"title": "tpc sim API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(SCHEMAS.get_schema(routes=request.app.routes))


def save_credentials(settings: Settings, token: str) -> None:
    path = settings.credentials_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_url": settings.api_url, "token": token}) + "\n")
    path.chmod(0o600)


def bootstrap(service: Service, settings: Settings) -> None:
    """Create the first product on an empty store; tell the user its token if we made it."""
    created = service.bootstrap(settings.api_token)
    if created is not None and created.token is not None:
        save_credentials(settings, created.token)
        print(
            f"Created product {created.product_id}; its API token is {created.token}\n"
            f"(saved to {settings.credentials_path}, where `tpc` finds it)",
            file=sys.stderr,
            flush=True,
        )


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = await asyncio.to_thread(Service, settings)
        await asyncio.to_thread(bootstrap, service, settings)
        executor = None
        if settings.run_workers:
            runners = build_runners(service.blobs.get)
            executor = Executor(service, runners, settings.concurrency, judge=LlmJudge())
        app.state.service = service
        app.state.executor = executor
        poller = asyncio.create_task(_follow_log(service, settings.poll_interval_s))
        if executor is not None:
            await executor.resume()
        try:
            yield
        finally:
            poller.cancel()
            if executor is not None:
                await executor.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await asyncio.to_thread(service.close)

    routes = [
        Route("/healthz", healthz, include_in_schema=False),
        Route("/openapi.json", openapi, include_in_schema=False),
        *ROUTES,
        *web_routes(),
    ]
    return Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )


async def _follow_log(service: Service, interval: float) -> None:
    """Keep the views current with events other processes write (workers, other servers, a
    rebuild): wake on PostgreSQL's NOTIFY, or after `interval` at the latest, since SQLite
    cannot notify and a NOTIFY can be lost."""
    # The wait blocks a thread of its own, not one of the default pool the executor uses.
    waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tpc-log-watch")
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                await loop.run_in_executor(waiter, service.projector.wait_for_events, interval)
                await asyncio.to_thread(service.projector.catch_up)
            except Exception:
                log.exception("projection catch-up failed; retrying")
                await asyncio.sleep(interval)
    finally:
        waiter.shutdown(wait=False, cancel_futures=True)
