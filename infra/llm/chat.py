"""One neutral "chat" over both providers: messages, tools, responses and usage.

The agent loop, the judges and the simulated user speak this; `infra/llm/anthropic_chat.py` and
`infra/llm/openai_chat.py` translate it to and from each provider's wire format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from domain.stats import ModelPrice
from infra.runners.toolbox import ToolSpec

Provider = Literal["anthropic", "openai"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "openai")


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Thinking:
    """The model's reasoning. `signature` / `redacted` are the provider's opaque data, which
    Anthropic needs back unchanged when the conversation continues after a tool call."""

    thinking: str
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolOutput:
    tool_call_id: str
    content: str
    is_error: bool = False


Block = Text | Thinking | ToolCall | ToolOutput


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """`user` and `assistant` turns; `tool` messages carry the results of the tool calls of the
    assistant message before them."""

    role: Literal["user", "assistant", "tool"]
    content: tuple[Block, ...]

    @classmethod
    def user(cls, text: str) -> ChatMessage:
        return cls("user", (Text(text),))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatMessage]
    system: str | None = None
    tools: Sequence[ToolSpec] = ()
    force_tool: str | None = None  # the model must call this tool (structured output)
    max_tokens: int = 4096
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    token_in: int = 0
    token_out: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.token_in + other.token_in, self.token_out + other.token_out)

    def cost(self, model: str, prices: Mapping[str, ModelPrice]) -> float | None:
        """USD, or None when the model has no price."""
        price = prices.get(model)
        return None if price is None else price.cost(self.token_in, self.token_out)


# Why a response ended: its turn (`end_turn`), to call tools (`tool_use`), out of tokens
# (`max_tokens`); any other provider reason is kept as the provider said it.
StopReason = str


@dataclass(frozen=True, slots=True)
class ChatResponse:
    content: tuple[Text | Thinking | ToolCall, ...]
    stop: StopReason
    usage: Usage
    model: str

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.content if isinstance(b, Text) and b.text)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [b for b in self.content if isinstance(b, ToolCall)]

    def as_message(self) -> ChatMessage:
        return ChatMessage("assistant", self.content)


class ProviderError(Exception):
    """A provider call failed for good (after retries): the message is the provider's."""

    def __init__(self, provider: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class MissingCredential(ProviderError):
    """The provider's API key is not set in the environment."""


class ChatClient(Protocol):
    """A provider's chat endpoint: retries, concurrency limits and errors handled inside."""

    @property
    def provider(self) -> Provider: ...

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """One model response; raises `ProviderError` when the provider fails for good."""
        ...


@dataclass(slots=True)
class Meter:
    """Tokens and cost spent by one consumer (a run's agent, its judge, its simulated user)."""

    prices: Mapping[str, ModelPrice]
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    priced: bool = True  # False once a model without a price was used: the cost is a floor

    def add(self, model: str, usage: Usage) -> None:
        self.usage = self.usage + usage
        cost = usage.cost(model, self.prices)
        if cost is None:
            self.priced = False
        else:
            self.cost += cost
