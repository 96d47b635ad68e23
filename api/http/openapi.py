"""`/openapi.json`, generated from the routes and the request models: every operation with its
path and query parameters, its request body's schema (the pydantic model that parses it), its
responses with the error schema, and bearer security. An endpoint describes itself with
`@documented(...)`; a route without it still appears, with what can be inferred."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from api.http.responses import RESPONSES

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error: a code, a message for people, and located problems for 422s.",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {
                    "type": "string",
                    "enum": [
                        "bad_request",
                        "unauthorized",
                        "forbidden",
                        "not_found",
                        "method_not_allowed",
                        "conflict",
                        "too_large",
                        "invalid",
                        "too_many_requests",
                        "internal",
                        "unavailable",
                        "storage_full",
                    ],
                },
                "message": {"type": "string"},
                "problems": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["loc", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "loc": {"type": "string", "description": "e.g. signals[0].fold"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def page_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last one.",
            },
        },
    }


ERRORS = {
    400: "The document cannot be read at all",
    401: "Missing or unknown bearer token",
    403: "Not allowed for this product by the operator",
    404: "Unknown id (or one another product owns)",
    409: "Not allowed in the current state",
    413: "Over an operator limit on size (the message names the setting)",
    422: "Invalid input, with located problems",
    429: "Over an operator limit on work in flight (the message names the setting)",
    500: "Unexpected error (logged with its traceback)",
    507: "The store is full: nothing was saved",
}
# Answered by every `/v1` operation: bad token, bad path or query text, a bug.
COMMON_ERRORS = (401, 422, 500)
BODY_ERRORS = (413, 422)


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str | None = None
    body: type[BaseModel] | None = None
    # A body without a model (an undocumented route): any JSON object.
    any_body: bool = False
    query: tuple[Param, ...] = ()
    status: int = 200
    answer: str = "OK"
    # The answer's schema (a name in api/http/responses.py), or a page of them.
    returns: str | None = None
    paged: bool = False
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)


def documented(**details: Any) -> Callable[[F], F]:
    """Attach the endpoint's OpenAPI description (an `Operation`)."""

    def attach(endpoint: F) -> F:
        endpoint.__openapi__ = Operation(**details)  # type: ignore[attr-defined]
        return endpoint

    return attach


ID = {"type": "string", "minLength": 1}
PATH_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "n": (
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": ["latest"]}]},
        "An iteration number, or `latest`",
    ),
    "exp_id": (ID, "An experiment id (`exp_…`)"),
    "task_id": (ID, "A task id (`task_…`)"),
    "env_id": (ID, "An environment id (`env_…`)"),
    "run_id": (ID, "A run id (`run_…`)"),
    "name": ({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}, "A secret's name"),
}


def openapi_document(routes: Iterable[BaseRoute], info: dict[str, Any]) -> dict[str, Any]:
    operations: list[tuple[str, str, Operation]] = []
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        operation = getattr(route.endpoint, "__openapi__", None) or _inferred(route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operations.append((route.path, method.lower(), operation))
    models = sorted(
        {op.body for _, _, op in operations if op.body is not None}, key=lambda m: m.__name__
    )
    refs, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=REF
    )
    schemas: dict[str, Any] = {
        **definitions.get("$defs", {}),
        **RESPONSES,
        "Error": ERROR_SCHEMA,
    }
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation in operations:
        body_ref = refs[(operation.body, "validation")] if operation.body else None
        paths.setdefault(path, {})[method] = _operation(path, method, operation, body_ref)
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _inferred(route: Route) -> Operation:
    doc = inspect.getdoc(route.endpoint) or route.path
    body = bool((route.methods or set()) & {"POST", "PUT", "PATCH"})
    return Operation(summary=doc.splitlines()[0], any_body=body, errors=(404,))


def _operation(
    path: str, method: str, operation: Operation, body_ref: dict[str, Any] | None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": operation.summary,
    }
    if operation.description:
        document["description"] = operation.description
    parameters = [_path_param(name) for name in re.findall(r"{(\w+)}", path)]
    parameters += [
        {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "description": param.description,
            "schema": param.schema,
        }
        for param in operation.query
    ]
    if parameters:
        document["parameters"] = parameters
    if body_ref is None and operation.any_body:
        body_ref = {"type": "object"}
    if body_ref is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body_ref}},
        }
    answer: dict[str, Any] = (
        {"$ref": REF.format(model=operation.returns)} if operation.returns else {"type": "object"}
    )
    success_schema = page_schema(answer) if operation.paged else answer
    responses: dict[str, Any] = {
        str(operation.status): {
            "description": operation.answer,
            "content": {"application/json": {"schema": success_schema}},
        }
    }
    extra = BODY_ERRORS if body_ref is not None else ()
    for status in sorted({*COMMON_ERRORS, *extra, *operation.errors}):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    document["responses"] = responses
    return document


def _path_param(name: str) -> dict[str, Any]:
    schema, description = PATH_PARAMS.get(name, (ID, f"The {name.replace('_', ' ')}"))
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _operation_id(method: str, path: str) -> str:
    words = [part.strip("{}") for part in path.split("/") if part and part != "v1"]
    return "_".join([method, *words]).replace("-", "_")
