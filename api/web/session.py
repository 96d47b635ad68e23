"""Dashboard sign-in: a server-side session (`infra/dashboard_sessions.py`) whose random id
is the HttpOnly, SameSite=Lax cookie; the API token itself never goes into the cookie.

Every page and fragment resolves the product from the session on each request, and a
session whose token was revoked no longer resolves, so revocation takes effect at once.
Every request that changes state (POST: forms, sign-in, sign-out, the validator) must come
from this site: its Origin must name this host, or, without an Origin, its Referer; a POST
with neither, or with `Origin: null` (sandboxed frames, some redirects), is refused.
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

PageEndpoint = Callable[[Request, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


async def form_data(request: Request) -> dict[str, list[str]]:
    """An `application/x-www-form-urlencoded` body, every value kept (checkbox lists)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


async def product_from_cookie(request: Request) -> str | None:
    session_id = request.cookies.get(COOKIE, "").strip()
    if not session_id:
        return None
    return await run_in_threadpool(service(request).catalog.product_for_session, session_id)


def _cross_site(request: Request) -> bool:
    """True for a state-changing request that does not provably come from this site."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == "null" or urlsplit(origin).netloc != host
    referer = request.headers.get("referer")
    return not referer or urlsplit(referer).netloc != host


def _refused() -> Response:
    return Response(
        "cross-site request refused: this form must be sent from the dashboard's own pages",
        status_code=403,
    )


def _safe_next(target: str | None) -> str:
    """Only a local path: never redirect a signed-in user to another site. Browsers read
    `/\\host` as `//host` and drop tabs and newlines from URLs, so those are refused too."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target if "\\" not in target and target.isprintable() else "/"


def signed_in(*, fragment: bool = False) -> Callable[[PageEndpoint], Endpoint]:
    """Resolve the product from the cookie; pages redirect to /login, fragments answer 401."""

    def decorate(endpoint: PageEndpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            if _cross_site(request):
                return _refused()
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
        return _refused()
    form = await form_data(request)
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    opened = (
        await run_in_threadpool(service(request).catalog.open_session, token) if token else None
    )
    if opened is None:
        message = "That token does not belong to any product." if token else "Enter a token."
        return render(request, "login.html", {"next": target, "error": message})
    session_id = opened.session_id
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=service(request).catalog.sessions.max_age_s,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """Sign out (a POST from the page header): the session ends on the server too."""
    if _cross_site(request):
        return _refused()
    session_id = request.cookies.get(COOKIE, "").strip()
    if session_id:
        await run_in_threadpool(service(request).catalog.end_session, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
