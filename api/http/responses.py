"""The JSON schemas of the `/v1` answers (docs/api.md, "Shapes"), for `/openapi.json`: the keys
every answer has, with their types. Objects stay open (extra keys allowed): a new field is not
a breaking change, a missing or retyped one is, and the fuzzer checks every answer against
these (tests/e2e/test_api_fuzz.py)."""

from __future__ import annotations

from typing import Any

from domain.vocabulary import ITERATION_STATUSES, RUN_STATES

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
OBJECT = {"type": "object"}
STRINGS = {"type": "array", "items": STRING}
RUN_STATUSES = list(RUN_STATES)


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

RESPONSES: dict[str, dict[str, Any]] = {
    "Task": shape(
        {
            "id": STRING,
            "name": STRING,
            "prompt": STRING,
            "success": nullable(OBJECT),
            "user": nullable(OBJECT),
            "tags": STRINGS,
            "metadata": OBJECT,
            "created_at": STRING,
        }
    ),
    "Environment": shape(
        {
            "id": STRING,
            "name": STRING,
            "agent": shape({"kind": STRING}),
            "limits": OBJECT,
            "created_at": STRING,
        }
    ),
    "Experiment": shape(
        {
            "id": STRING,
            "name": STRING,
            "task_ids": STRINGS,
            "env_ids": STRINGS,
            "repeats": INTEGER,
            "signal_config": nullable(shape({"hash": STRING, "text": STRING})),
            "iterations": INTEGER,
            "created_at": STRING,
            "version": INTEGER,
            "as_of": INTEGER,
        },
        optional=("as_of",),
    ),
    "AuditEvent": shape(
        {
            "position": INTEGER,
            "time": STRING,
            "type": STRING,
            "summary": STRING,
            "stream": {"type": "string", "enum": ["experiment", "iteration", "run"]},
            "id": STRING,
        }
    ),
    "IterationStatus": shape(
        {
            "experiment_id": STRING,
            "iteration": INTEGER,
            "status": {"type": "string", "enum": list(ITERATION_STATUSES)},
            "runs": shape({"total": INTEGER} | {status: INTEGER for status in RUN_STATUSES}),
            "config_hash": nullable(STRING),
            "cancel_requested": {"type": "boolean"},
            "created_at": STRING,
            "completed_at": nullable(STRING),
            "rescore_of": nullable(INTEGER),
            "imported": nullable(shape({"format": STRING, "runs": INTEGER, "files": INTEGER})),
            "warnings": STRINGS,
        },
        optional=("warnings",),
    ),
    "Results": shape(
        {
            "experiment_id": STRING,
            "iteration": INTEGER,
            "status": STRING,
            "config_hash": nullable(STRING),
            "rescore_of": nullable(INTEGER),
            "imported": nullable(shape({"format": STRING, "runs": INTEGER, "files": INTEGER})),
            "summary": OBJECT,
            "failure_clusters": {"type": "array", "items": OBJECT},
            "suggestions": {"type": "array"},
            "compare": OBJECT,
            # The intervals' confidence (docs/results.md, "Uncertainty and significance").
            "confidence": {"type": "number", "enum": [0.9, 0.95, 0.99]},
        },
        optional=("compare",),
    ),
    "SignalsReport": shape(
        {
            "experiment_id": STRING,
            "iteration": INTEGER,
            "config_hash": nullable(STRING),
            "confidence": {"type": "number", "enum": [0.9, 0.95, 0.99]},
            "aggregates": {"type": "array", "items": OBJECT},
            "runs": {"type": "array", "items": OBJECT},
        }
    ),
    "Run": shape(
        {
            "id": STRING,
            "experiment_id": STRING,
            "iteration": INTEGER,
            "task_id": STRING,
            "environment_id": STRING,
            "repeat": INTEGER,
            "status": {"type": "string", "enum": RUN_STATUSES},
            "termination_reason": nullable(STRING),
            "attempts": INTEGER,
            "stats": nullable(OBJECT),
            "error": nullable(STRING),
            "signals": nullable(OBJECT),
            # Only for a run of an imported iteration: where its transcript was read.
            "source": shape({"file": nullable(STRING), "sample": nullable(STRING)}),
        },
        optional=("source",),
    ),
    "RunLog": shape(
        {
            "run_id": STRING,
            "status": {"type": "string", "enum": RUN_STATUSES},
            "attempt": INTEGER,
            "messages": {"type": "array", "items": shape({"index": INTEGER})},
            "next": INTEGER,
            "done": {"type": "boolean"},
        }
    ),
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
