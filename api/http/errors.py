"""Every error leaves the API as JSON `{"error": {"code", "message", "problems"?}}`."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.error_mapping import http_status
from domain.errors import DomainError, InvalidInput

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


def error_response(
    status: int, message: str, problems: list[dict[str, str]] | None = None
) -> JSONResponse:
    body: dict[str, object] = {"code": CODES.get(status, "error"), "message": message}
    if problems:
        body["problems"] = problems
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


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
