"""Every error leaves the API as JSON `{"error": {"code", "message", "problems"?}}`, a 500
included: the exception handlers map domain errors once (api/error_mapping.py), and
`InternalErrors` turns anything unexpected into a logged traceback and the same JSON."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.error_mapping import http_status
from domain.errors import DomainError, InvalidInput
from domain.safe_text import clean_text

log = logging.getLogger("tpc.server")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
    507: "storage_full",
}


def error_body(
    status: int, message: str, problems: list[dict[str, str]] | None = None
) -> dict[str, object]:
    # A message may quote the input: cleaned, a lone surrogate in it cannot break the answer.
    body: dict[str, object] = {"code": CODES.get(status, "error"), "message": clean_text(message)}
    if problems:
        body["problems"] = [
            {"loc": clean_text(p["loc"]), "message": clean_text(p["message"])} for p in problems
        ]
    return {"error": body}


def error_response(
    status: int, message: str, problems: list[dict[str, str]] | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, message, problems), status_code=status, headers=headers)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    problems = (
        [{"loc": loc, "message": message} for loc, message in exc.problems]
        if isinstance(exc, InvalidInput)
        else None
    )
    return error_response(http_status(exc), str(exc), problems)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


EXCEPTION_HANDLERS = {DomainError: domain_error, HTTPException: http_error}


class InternalErrors:
    """Outside every route (only the security headers wrap it): an exception nothing else
    handled is logged with its traceback and answered with the documented JSON 500 (the
    details stay in the log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for another answer: the client sees a cut response
                raise
            response = error_response(500, "internal error: the server log has the details")
            await response(scope, receive, send)
