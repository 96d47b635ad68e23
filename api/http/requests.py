"""Reading requests: the caller's product, JSON bodies, paging parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from domain.errors import InvalidInput, Unauthorized
from infra.service import Service

T = TypeVar("T")


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


async def product(request: Request) -> str:
    """The product the bearer token belongs to; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    found = await run_in_threadpool(service(request).product_for_token, token.strip())
    if found is None:
        raise Unauthorized("unknown API token")
    return found


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput(
            "the request body is not valid JSON", (("", "not valid JSON"),)
        ) from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", (("", "must be an object"),))
    return body


def paging(request: Request) -> tuple[int, str | None]:
    raw = request.query_params.get("limit", "50")
    if not raw.isdigit():
        raise InvalidInput("limit must be a whole number", (("limit", "must be a whole number"),))
    return int(raw), request.query_params.get("cursor")


def iteration_number(request: Request) -> int | str:
    raw = str(request.path_params["n"])
    if raw == "latest":
        return raw
    if not raw.isdigit():
        raise InvalidInput(
            f"iteration must be a number or 'latest' (got {raw!r})",
            (("n", "must be a number or 'latest'"),),
        )
    return int(raw)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous service call off the event loop."""
    return await run_in_threadpool(function, *args, **kwargs)
