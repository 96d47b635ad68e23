"""What users define: tasks and environments (docs/spec.md §2, §6), validated with located problems.

Definitions are versioned by the aggregates that hold them (`domain.catalog`) and frozen, as
plain JSON, into every iteration that uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from domain.errors import InvalidInput
from domain.network_policy import NetworkMode, network_mode
from domain.problems import problems_from_pydantic
from domain.secrets import references, whole_reference
from domain.signals.matching import RegexError, compile_regex
from domain.vocabulary import DEFAULT_LLM_MAX_STEPS, DEFAULT_SCRIPTED_MAX_STEPS, DEFAULT_TIMEOUT_S

_M = TypeVar("_M", bound=BaseModel)


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            compile_regex(value)
        except RegexError as error:
            raise ValueError(str(error)) from None
    return value


class JudgeCriterion(_Definition):
    model: str
    prompt: str


class SuccessCriteria(_Definition):
    """All given criteria must hold for a run to pass (docs/spec.md §6.1)."""

    final_answer_regex: str | None = None
    transcript_excludes_regex: str | None = None
    command: str | None = None
    judge: JudgeCriterion | None = None

    _check_final = field_validator("final_answer_regex")(_regex)
    _check_excludes = field_validator("transcript_excludes_regex")(_regex)


class SimulatedUser(_Definition):
    model: str
    persona: str
    max_turns: int = Field(3, ge=1, le=50)


class TaskDefinition(_Definition):
    """What an agent is asked to do."""

    name: str
    prompt: str
    success: SuccessCriteria | None = None
    user: SimulatedUser | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _check_name = field_validator("name", "prompt")(_non_empty)


class Limits(_Definition):
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=86_400)
    max_cost_usd: float | None = Field(None, gt=0)


class ReplayAgent(_Definition):
    """Returns stored transcripts: a task id or exact task name -> transcript references."""

    kind: Literal["replay"]
    # Values are content hashes of stored transcripts (`sha256:…`); repeat i takes item i mod n.
    transcripts: dict[str, list[str]]

    @field_validator("transcripts")
    @classmethod
    def _not_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("a replay environment needs at least one transcript")
        for key, refs in value.items():
            if not refs:
                raise ValueError(f"no transcripts for {key!r}")
        return value


class ScriptedAgent(_Definition):
    """A deterministic simulated agent for demos and tests: no model is called."""

    kind: Literal["scripted"]
    skill: float = Field(0.7, ge=0, le=1, description="Chance that a run succeeds.")
    step_latency_s: float = Field(0.0, ge=0, le=60, description="Simulated time per step.")
    max_steps: int = Field(DEFAULT_SCRIPTED_MAX_STEPS, ge=2, le=200)
    model: str = "scripted"


ToolName = Literal["search_docs", "read_doc", "shell", "write_file"]
TranscriptFormat = Literal[
    "tpc", "openai-messages", "anthropic-messages", "claude-stream-json", "codex-jsonl"
]


DEFAULT_TOOLS: tuple[ToolName, ...] = ("search_docs", "read_doc")


class LlmAgent(_Definition):
    """The built-in tool-using agent loop over the anthropic or openai SDK (docs/spec.md §6).

    Folders (`docs`, `workspace`) are paths on the machine that executes the run; the CLI
    makes relative paths in an environment file absolute before uploading it.
    """

    kind: Literal["llm"]
    provider: Literal["anthropic", "openai"]
    model: str
    # Any OpenAI- or Anthropic-compatible server; else the provider's *_BASE_URL or default.
    # The server's key goes only to the endpoints the operator allows (docs/security.md).
    base_url: str | None = None
    # The product's own key, as a reference to one of its secrets: `${NAME}`.
    api_key: str | None = None
    system_prompt: str = "You are a developer trying this product. Use the tools to get it done."
    tools: list[ToolName] = Field(default_factory=lambda: list(DEFAULT_TOOLS))
    docs: str | None = None
    workspace: str | None = Field(None, description="Template folder copied into each run.")
    # `shell` commands' network: none, loopback or full (true / false mean full / none).
    network: NetworkMode = Field("none", description="The network `shell` commands get.")
    shell_timeout_s: float = Field(60.0, gt=0, le=3_600)
    max_steps: int = Field(DEFAULT_LLM_MAX_STEPS, ge=1, le=500)
    max_tokens: int = Field(4096, ge=1, le=200_000, description="Per model response.")
    temperature: float | None = Field(None, ge=0, le=2)

    _check_model = field_validator("model")(_non_empty)

    @field_validator("network", mode="before")
    @classmethod
    def _network_names(cls, value: object) -> NetworkMode:
        return network_mode(value)

    @field_validator("api_key")
    @classmethod
    def _key_is_a_reference(cls, value: str | None) -> str | None:
        if value is not None and whole_reference(value) is None:
            # A literal key would be kept in the event log for good and shown by GET.
            raise ValueError(
                "must name a product secret, as ${NAME} (set it with `tpc product secret set "
                "PRODUCT NAME` or PUT /v1/secrets/NAME), never the key itself"
            )
        return value


class CommandAgent(_Definition):
    """An external agent CLI started in a fresh per-run workspace (docs/spec.md §6).

    `command` is an argument list or a string split like a shell would; `{prompt}` in any
    argument is replaced by the task's prompt (never passed through a shell).
    """

    kind: Literal["command"]
    command: str | list[str]
    transcript_format: TranscriptFormat = "tpc"
    workspace: str | None = Field(None, description="Template folder copied into each run.")
    env: dict[str, str] = Field(default_factory=dict)
    # Where the transcript is written: stdout (default) or a file relative to the workspace.
    output_file: str | None = None
    model: str | None = Field(None, description="The agent's model, for stats and prices.")
    # none, loopback or full; unset: the most the operator allows (TPC_AGENT_NETWORK_MAX).
    network: NetworkMode | None = None

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not (value.strip() if isinstance(value, str) else value):
            raise ValueError("must not be empty")
        return value


Agent = Annotated[
    ReplayAgent | ScriptedAgent | LlmAgent | CommandAgent, Field(discriminator="kind")
]


class EnvironmentDefinition(_Definition):
    """Which agent runs the tasks, and within which limits."""

    name: str
    agent: Agent
    limits: Limits = Field(default_factory=Limits)

    _check_name = field_validator("name")(_non_empty)


def command_use_in_environment(definition: Mapping[str, Any]) -> str | None:
    """What in a (parsed, as JSON) environment runs commands on the server, if anything."""
    agent = definition.get("agent") or {}
    if agent.get("kind") == "command":
        return "a `command` agent"
    if agent.get("kind") == "llm" and "shell" in (agent.get("tools") or ()):
        return "the llm agent's `shell` tool"
    return None


def command_use_in_task(definition: Mapping[str, Any]) -> str | None:
    """Whether a (parsed, as JSON) task runs a command on the server: `success.command`."""
    return "a `success.command`" if (definition.get("success") or {}).get("command") else None


def secret_references(definition: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, secret name) for every `${NAME}` a (parsed, as JSON) environment uses: its
    command agent's `env` values and its llm agent's `api_key`."""
    agent = definition.get("agent") or {}
    found: list[tuple[str, str]] = []
    if agent.get("kind") == "command":
        for key, value in (agent.get("env") or {}).items():
            found.extend((f"agent.env.{key}", name) for name in references([value]))
    if agent.get("kind") == "llm" and agent.get("api_key"):
        found.extend(("agent.api_key", name) for name in references([agent["api_key"]]))
    return found


def parse_task(data: Any) -> TaskDefinition:
    return _parse(TaskDefinition, data, "invalid task")


def parse_environment(data: Any) -> EnvironmentDefinition:
    return _parse(EnvironmentDefinition, data, "invalid environment")


def _parse(model: type[_M], data: Any, what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = problems_from_pydantic(error, document=data)
        summary = "; ".join(str(p) for p in problems[:3])
        located = tuple((p.loc, p.message) for p in problems)
        raise InvalidInput(f"{what}: {summary}", located) from None
