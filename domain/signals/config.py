"""The signal config document (docs/spec.md §4.1–4.2): its typed model and what its values mean.

The pydantic models describe the *shape* (types, allowed values, unknown keys) and publish the
JSON Schema editors complete from; the rules that relate fields to each other live in
`domain.signals.validation`, which reports every problem at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.functional_validators import PlainValidator

from domain.sources import Source
from domain.stats import CATEGORY_STATS
from domain.vocabulary import TERMINAL, TERMINATION_REASONS

SignalType = Literal["boolean", "number", "category"]
Scope = Literal["run", "message"]
TargetRole = Literal["assistant", "user", "tool"]
FoldFn = Literal["sum", "count", "average", "min", "max", "histogram"]
Method = Literal["pattern", "stats", "llm"]
StatName = Literal[
    "duration",
    "token_in",
    "token_out",
    "token_total",
    "cost",
    "tool_calls",
    "steps",
    "turns",
    "status",
    "termination_reason",
]
AggregateFn = Literal[
    "count",
    "count_where",
    "rate",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "mode",
    "count_by_category",
    "avg_by_category",
    "distribution",
]
NUMERIC_AGGREGATES: frozenset[str] = frozenset(
    {"sum", "avg", "min", "max", "median", "avg_by_category"}
)
WHERE_OPERATORS: tuple[str, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in")

DEFAULT_JUDGE_MODEL = "claude-haiku-4-5"
JUDGE_MODELS: tuple[str, ...] = (
    "claude-haiku-4-5",
    "claude-sonnet-4",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "gpt-4.1",
    "gpt-4.1-nano",
)
STAT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "status": TERMINAL,
    "termination_reason": TERMINATION_REASONS,
}
assert set(STAT_CATEGORIES) == set(CATEGORY_STATS)

# What a per-run value is once extracted (and folded): aggregates are checked against this.
ValueKind = Literal["boolean", "number", "category", "histogram"]


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"must be a string, number or boolean (got {type(value).__name__})")


Scalar = Annotated[
    bool | int | float | str,
    PlainValidator(_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class NamedPattern(_Spec):
    name: str = Field(description="A label for the pattern, shown with its evidence.")
    regex: str = Field(description="RE2 syntax (linear-time): no backreferences or lookaround.")


class Extract(_Spec):
    """How a signal's value is read from a run."""

    method: Method
    patterns: list[NamedPattern] | None = Field(
        None, description="pattern, boolean signals: true when any pattern is found."
    )
    needle: str | None = Field(
        None, description="pattern, number signals: the count of non-overlapping matches."
    )
    ignore_case: bool = False
    stat: StatName | None = Field(None, description="stats: the built-in stat to read.")
    prompt: str | None = Field(None, description="llm: the question the judge answers.")
    model: str | None = Field(None, description=f"llm: judge model ({DEFAULT_JUDGE_MODEL}).")
    source: Source | None = Field(
        None, description="Which text to read (may sit here or on the signal)."
    )


class Fold(_Spec):
    fn: FoldFn


class Signal(_Spec):
    """One metric extracted from every run."""

    id: str = Field(description="kebab-case, unique among signals")
    name: str
    description: str | None = None
    type: SignalType
    category_enums: list[str] | None = None
    scope: Scope = "run"
    target_role: TargetRole | None = None
    fold: Fold | None = None
    source: Source | None = None
    extract: Extract

    @property
    def effective_source(self) -> str | None:
        """The source named on the signal or, as the seed example writes it, in `extract`."""
        return self.source or self.extract.source

    @property
    def judge_model(self) -> str:
        return self.extract.model or DEFAULT_JUDGE_MODEL

    @property
    def categories(self) -> tuple[str, ...]:
        """The declared categories; status and termination_reason stats default to theirs."""
        if self.category_enums is not None:
            return tuple(self.category_enums)
        if self.extract.method == "stats" and self.extract.stat in STAT_CATEGORIES:
            return STAT_CATEGORIES[self.extract.stat]
        return ()

    @property
    def value_kind(self) -> ValueKind:
        """The kind of the per-run value after any message fold (docs/spec.md §4.4)."""
        if self.scope == "run" or self.fold is None:
            return self.type
        return "histogram" if self.fold.fn == "histogram" else "number"


class Where(_Spec):
    """A condition for `count_where`: exactly one operator."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: float | int | None = None
    gte: float | int | None = None
    lt: float | int | None = None
    lte: float | int | None = None
    in_: list[Scalar] | None = Field(None, alias="in")

    @property
    def operators(self) -> list[tuple[str, Any]]:
        """The operators the user wrote, with their operands."""
        return [
            ("in" if name == "in_" else name, getattr(self, name))
            for name in type(self).model_fields
            if name in self.model_fields_set
        ]


class Aggregate(_Spec):
    """One iteration-level number folded from a signal's per-run values."""

    id: str = Field(description="kebab-case, unique among aggregates")
    signal_id: str
    fn: AggregateFn
    label: str
    where: Where | None = Field(None, description="count_where: the condition.")
    by: str | None = Field(None, description="avg_by_category: the id of a category signal.")
    bins: int | None = Field(None, description="distribution: histogram bins (10).")


class SignalConfig(_Spec):
    """A whole signal config document, `version: 1`."""

    version: Literal[1]
    signals: list[Signal]
    aggregates: list[Aggregate] = Field(default_factory=list)

    def signal(self, signal_id: str) -> Signal:
        for signal in self.signals:
            if signal.id == signal_id:
                return signal
        raise KeyError(signal_id)

    def to_json(self) -> dict[str, Any]:
        """The parsed form, as frozen into an iteration."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a signal config, for editors (`tpc sim signals schema`)."""
    schema = SignalConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tpc sim signal config"
    return schema
