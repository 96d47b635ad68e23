"""Built-in run stats (SPEC §3.2): recorded where the runner knew them, derived where possible."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from domain.transcripts import (
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    Transcript,
)

NUMERIC_STATS: tuple[str, ...] = (
    "duration",
    "token_in",
    "token_out",
    "token_total",
    "cost",
    "tool_calls",
    "steps",
    "turns",
)
CATEGORY_STATS: tuple[str, ...] = ("status", "termination_reason")
STATS: tuple[str, ...] = NUMERIC_STATS + CATEGORY_STATS


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, token_in: int, token_out: int) -> float:
        return (token_in * self.input_per_mtok + token_out * self.output_per_mtok) / 1_000_000


@dataclass(frozen=True, slots=True)
class RunStats:
    duration: float | None
    token_in: int | None
    token_out: int | None
    token_total: int | None
    cost: float | None
    tool_calls: int
    steps: int
    turns: int
    status: str | None
    termination_reason: str | None
    model: str | None

    def get(self, stat: str) -> Any:
        return getattr(self, stat)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def derive_stats(
    transcript: Transcript, prices: Mapping[str, ModelPrice] | None = None
) -> RunStats:
    """Every stat of §3.2; a stat that is neither recorded nor derivable is None."""
    recorded = transcript.stats
    token_in, token_out = recorded.token_in, recorded.token_out
    token_total = token_in + token_out if token_in is not None and token_out is not None else None
    messages = transcript.messages
    roles = [message.role for message in messages]
    return RunStats(
        duration=_duration(transcript),
        token_in=token_in,
        token_out=token_out,
        token_total=token_total,
        cost=_cost(transcript, prices or {}),
        tool_calls=_count_tool_calls(messages),
        steps=roles.count("assistant"),
        turns=roles.count("user"),
        status=transcript.status,
        termination_reason=transcript.termination_reason,
        model=recorded.model,
    )


def _count_tool_calls(messages: list[Message]) -> int:
    kinds = [type(block) for message in messages for block in message.content]
    if _BLOCKS.issuperset(kinds):
        return kinds.count(ToolCallBlock)
    # A block of another class: ask isinstance() (slow for pydantic models: their metaclass
    # checks in Python).
    blocks = [block for message in messages for block in message.content]
    return sum(1 for block in blocks if isinstance(block, ToolCallBlock))


_BLOCKS = frozenset([TextBlock, ThinkingBlock, ToolCallBlock, ToolResultBlock])


def _duration(transcript: Transcript) -> float | None:
    if transcript.stats.duration is not None:
        return transcript.stats.duration
    if transcript.started_at is None or transcript.ended_at is None:
        return None
    return (_aware(transcript.ended_at) - _aware(transcript.started_at)).total_seconds()


def _aware(moment: datetime) -> datetime:
    # A timestamp without an offset is taken as UTC, the transcript format's convention.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# A dated snapshot of a model (`claude-sonnet-4-5-20250929`, `gpt-4o-mini-2024-07-18`), as
# API responses and logs name it, is priced as the model.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def price_of(model: str | None, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The model's price, or its dated snapshot's base model's; None when unknown."""
    if not model:
        return None
    return prices.get(model) or prices.get(_SNAPSHOT.sub("", model))


def _cost(transcript: Transcript, prices: Mapping[str, ModelPrice]) -> float | None:
    recorded = transcript.stats
    if recorded.cost is not None:
        return recorded.cost
    price = price_of(recorded.model, prices)
    if price is None or recorded.token_in is None or recorded.token_out is None:
        return None
    return price.cost(recorded.token_in, recorded.token_out)
