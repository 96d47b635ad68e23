"""Every answer of the API is the documented JSON, an unexpected exception included."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.http.body_limit import BodyLimit
from api.http.errors import EXCEPTION_HANDLERS, InternalErrors


async def broken(request: Request) -> JSONResponse:
    raise ZeroDivisionError("a bug")


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def app() -> Starlette:
    return Starlette(
        routes=[Route("/broken", broken), Route("/echo", echo, methods=["POST"])],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(InternalErrors), Middleware(BodyLimit, max_bytes=10)],
    )


def test_an_unexpected_exception_is_a_logged_json_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "tpc.server"):
        response = TestClient(app(), raise_server_exceptions=False).get("/broken")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error: the server log has the details"}
    }
    assert "ZeroDivisionError: a bug" in caplog.text  # the traceback, for the operator


def test_bodies_over_the_limit_are_413_declared_or_streamed() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    assert client.post("/echo", content=b"x" * 10).json() == {"size": 10}
    declared = client.post("/echo", content=b"x" * 11)
    streamed = client.post("/echo", content=iter([b"x" * 6, b"x" * 6]))
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
        assert "TPC_MAX_BODY_BYTES" in response.json()["error"]["message"]
