"""The request bodies of the `/v1` endpoints, one pydantic model each: they parse what a
client sends (unknown fields refused, every problem located) and their JSON schemas are the
request bodies of `/openapi.json`, so the document cannot drift from what is accepted.

They check shapes only; the rules (a name not empty, repeats in range, ids that exist) live
in the domain, where every caller meets them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from domain.definitions import (
    CommandAgent,
    EnvironmentDefinition,
    LlmAgent,
    ScriptedAgent,
    TaskDefinition,
)
from domain.experiments import MAX_NAME_LENGTH, MAX_REPEATS, MIN_REPEATS


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskCreate(TaskDefinition):
    """A task definition (docs/api.md)."""


class ReplayAgentUpload(Body):
    """A replay agent as uploaded: transcripts inline (one or a list per task id or name);
    the server stores them and the environment keeps their references."""

    kind: Literal["replay"]
    transcripts: dict[str, Any] = Field(min_length=1)


class EnvironmentCreate(EnvironmentDefinition):
    """An environment definition, replay transcripts inline."""

    agent: Annotated[  # type: ignore[assignment]
        ReplayAgentUpload | ScriptedAgent | LlmAgent | CommandAgent, Field(discriminator="kind")
    ]


NAME_RULE = f"Not empty, at most {MAX_NAME_LENGTH} characters."
NAME_SCHEMA: dict[str, Any] = {"minLength": 1, "maxLength": MAX_NAME_LENGTH}
REPEATS_RULE = "Runs of each task × environment in an iteration."
REPEATS_SCHEMA: dict[str, Any] = {"minimum": MIN_REPEATS, "maximum": MAX_REPEATS}
CONFIG_RULE = "A signal config as YAML text (docs/signals.md)."


def _optional(extra: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """Schema of a field that may be left out but not sent as null (no `default: null`)."""

    def edit(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(extra)

    return edit


class ExperimentCreate(Body):
    name: str = Field(description=NAME_RULE, json_schema_extra=NAME_SCHEMA)
    task_ids: list[str] = Field(default_factory=list)
    env_ids: list[str] = Field(default_factory=list)
    repeats: StrictInt = Field(1, description=REPEATS_RULE, json_schema_extra=REPEATS_SCHEMA)
    signal_config: str | None = Field(None, description=CONFIG_RULE)


class ExperimentUpdate(Body):
    """Only the fields given change; `signal_config: null` clears the config."""

    # Absent means unchanged; null is neither a name nor a number (the default is never
    # validated, a null sent is).
    name: str = Field(  # type: ignore[assignment]
        None, description=NAME_RULE, json_schema_extra=_optional(NAME_SCHEMA)
    )
    repeats: StrictInt = Field(  # type: ignore[assignment]
        None, description=REPEATS_RULE, json_schema_extra=_optional(REPEATS_SCHEMA)
    )
    signal_config: str | None = Field(None, description=CONFIG_RULE + " null clears it.")


class TaskAttach(Body):
    task_id: str


class EnvironmentAttach(Body):
    env_id: str


class SignalConfigUpload(Body):
    signal_config: str = Field(description=CONFIG_RULE)


class RescoreRequest(Body):
    """Re-score an iteration; without `signal_config`, with the experiment's current one."""

    signal_config: str = Field(  # type: ignore[assignment]
        None,
        description=CONFIG_RULE + " Used for this re-score only; the experiment's is unchanged.",
        json_schema_extra=_optional({}),
    )


class ImportedTranscript(Body):
    """One recorded transcript to import and the task and environment it belongs to."""

    task: str = Field(min_length=1, description="A task of the experiment: its id or exact name.")
    environment: str = Field(
        min_length=1, description="An environment of the experiment: its id or exact name."
    )
    transcript: dict[str, Any] = Field(description="The transcript, as tpc transcript v1.")
    file: str | None = Field(None, description="The log file it was read from.")
    sample: str | None = Field(None, description="Which transcript of that file it is.")


class ImportRequest(Body):
    """Recorded transcripts, one run each, imported as the experiment's next iteration."""

    format: str = Field(description="The format the transcripts were read from (`tpc`, …).")
    runs: list[ImportedTranscript] = Field(
        description="At least one; at most the server's runs-per-iteration limit."
    )


class SecretValue(Body):
    value: str = Field(min_length=1, description="The secret's value; never returned by any route.")
