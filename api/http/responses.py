"""The JSON schemas of the `/v1` answers (docs/api.md, "Shapes"), for `/openapi.json`: the keys
every answer has, with their types. Objects stay open (extra keys allowed): a new field is not
a breaking change, a missing or retyped one is, and the fuzzer checks every answer against
these (tests/e2e/test_api_fuzz.py)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from projections.read_models import (
    AuditEvent,
    EnvironmentView,
    ExperimentView,
    IterationStatus,
    ReadModel,
    Results,
    RunLog,
    RunRow,
    TaskView,
)

STRING = {"type": "string"}
OBJECT = {"type": "object"}
STRINGS = {"type": "array", "items": STRING}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def shape(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object with these properties, all required except `optional`."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


LOCATED = shape({"loc": STRING, "message": STRING})

# The answers that have a read model (projections/read_models.py) take their schema from it:
# one definition, for the answer and for the document.
READ_MODELS: dict[str, type[ReadModel]] = {
    "Task": TaskView,
    "Environment": EnvironmentView,
    "Experiment": ExperimentView,
    "AuditEvent": AuditEvent,
    "IterationStatus": IterationStatus,
    "Results": Results,
    "Run": RunRow,
    "RunLog": RunLog,
}


def read_model_schemas() -> dict[str, dict[str, Any]]:
    """The read models' schemas under their answer names, with the models they nest."""
    refs, definitions = models_json_schema(
        [(model, "serialization") for model in READ_MODELS.values()],
        ref_template="#/components/schemas/{model}",
    )
    nested: dict[str, dict[str, Any]] = definitions.get("$defs", {})
    named = {}
    for name, model in READ_MODELS.items():
        ref = refs[(model, "serialization")]["$ref"].rsplit("/", 1)[-1]
        named[name] = nested.pop(ref)
    return {**nested, **named}


RESPONSES: dict[str, dict[str, Any]] = {
    **read_model_schemas(),
    "Secret": shape({"name": STRING, "updated_at": STRING}),
    "Secrets": shape(
        {"items": {"type": "array", "items": shape({"name": STRING, "updated_at": STRING})}}
    ),
    "SecretRemoved": shape({"name": STRING, "removed": {"type": "boolean"}}),
    "Transcript": OBJECT,
    "Actions": shape({"run_id": STRING, "actions": {"type": "array", "items": OBJECT}}),
    "ValidationReport": shape(
        {
            "valid": {"type": "boolean"},
            "errors": {"type": "array", "items": LOCATED},
            "warnings": {"type": "array", "items": LOCATED},
            "config_hash": nullable(STRING),
        }
    ),
}
