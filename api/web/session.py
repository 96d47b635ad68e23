"""Dashboard sign-in: the product's API token in an HttpOnly, SameSite=Lax cookie.

Every page and fragment resolves the product from the cookie on each request (the same lookup
as a bearer token), so a revoked token stops working at once and nothing is cached here.
Browser forms are same-origin POSTs; a POST whose Origin names another site is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from api.error_mapping import http_status
from api.http.requests import service
from api.web.templating import render
from domain.errors import DomainError

COOKIE = "tpc_session"
MAX_AGE = 7 * 24 * 3600

PageEndpoint = Callable[[Request, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


async def form_data(request: Request) -> dict[str, list[str]]:
    """An `application/x-www-form-urlencoded` body, every value kept (checkbox lists)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


async def product_from_cookie(request: Request) -> str | None:
    token = request.cookies.get(COOKIE, "").strip()
    if not token:
        return None
    return await run_in_threadpool(service(request).product_for_token, token)


def _cross_site(request: Request) -> bool:
    origin = request.headers.get("origin")
    if request.method in ("GET", "HEAD") or not origin or origin == "null":
        return False
    return urlsplit(origin).netloc != request.headers.get("host", "")


def _safe_next(target: str | None) -> str:
    """Only a local path: never redirect a signed-in user to another site."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def signed_in(*, fragment: bool = False) -> Callable[[PageEndpoint], Endpoint]:
    """Resolve the product from the cookie; pages redirect to /login, fragments answer 401."""

    def decorate(endpoint: PageEndpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            if _cross_site(request):
                return Response("cross-site request refused", status_code=403)
            owner = await product_from_cookie(request)
            if owner is None:
                if fragment or request.method != "GET":
                    return JSONResponse(
                        {"error": {"code": "unauthorized", "message": "sign in again"}},
                        status_code=401,
                    )
                path = request.url.path
                if request.url.query:
                    path += "?" + request.url.query
                return RedirectResponse("/login?" + urlencode({"next": path}), status_code=303)
            try:
                return await endpoint(request, owner)
            except DomainError as error:
                status = http_status(error)
                if fragment:
                    message = {"code": "error", "message": str(error)}
                    return JSONResponse({"error": message}, status_code=status)
                context = {"status": status, "message": str(error)}
                return render(request, "error.html", context, status_code=status)

        return wrapper

    return decorate


async def login_page(request: Request) -> Response:
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next"))})


async def login(request: Request) -> Response:
    if _cross_site(request):
        return Response("cross-site request refused", status_code=403)
    form = await form_data(request)
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    owner = await run_in_threadpool(service(request).product_for_token, token) if token else None
    if owner is None:
        message = "That token does not belong to any product." if token else "Enter a token."
        return render(request, "login.html", {"next": target, "error": message})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
