"""The OpenAPI generator describes routes it was told nothing about, too."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.http.openapi import openapi_document


async def add_secret(request: Request) -> JSONResponse:
    """Add a secret.

    More words."""
    return JSONResponse({})


def test_an_undocumented_route_still_has_its_parameters_body_and_errors() -> None:
    route = Route("/v1/things/{thing_id}/secrets", add_secret, methods=["POST"])
    document = openapi_document([route], {"title": "t", "version": "1"})
    operation = document["paths"]["/v1/things/{thing_id}/secrets"]["post"]
    assert operation["summary"] == "Add a secret."
    assert [p["name"] for p in operation["parameters"]] == ["thing_id"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"type": "object"}
    assert set(operation["responses"]) == {"200", "401", "404", "413", "422", "500"}


def test_the_document_is_valid_openapi_3_1() -> None:
    import schemathesis

    from api.http.app import INFO
    from api.http.routes import ROUTES

    document = openapi_document(ROUTES, INFO)
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    broken = {**document, "paths": {"/x": {"get": {"responses": {"200": {"with located": 1}}}}}}
    with pytest.raises(Exception, match="with located"):
        schemathesis.openapi.from_dict(broken).validate()
