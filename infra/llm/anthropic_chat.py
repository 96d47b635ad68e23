"""The neutral chat over the Anthropic Messages API (`anthropic.AsyncAnthropic`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anthropic

from infra.llm.chat import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Text,
    Thinking,
    ToolCall,
    ToolOutput,
    Usage,
)

_STOPS = {"end_turn": "end_turn", "stop_sequence": "end_turn", "tool_use": "tool_use"}


class AnthropicChat:
    """One SDK client; a single attempt per `send` (retries and limits are the caller's)."""

    provider = "anthropic"

    def __init__(self, api_key: str, base_url: str | None, timeout_s: float) -> None:
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
            # aiohttp (the SDK's `aiohttp` extra) rather than httpx2: about 40% less of the
            # event loop's CPU a call (docs/performance.md, "Choices, measured"). It opens its
            # session on the first request, in the loop this client belongs to.
            http_client=anthropic.DefaultAioHttpClient(),
        )

    async def send(self, request: ChatRequest) -> ChatResponse:
        options: dict[str, Any] = {}
        if request.system:
            options["system"] = request.system
        if request.tools:
            options["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        if request.force_tool:
            options["tool_choice"] = {"type": "tool", "name": request.force_tool}
        if request.temperature is not None:
            # Not a typed parameter of this SDK version, still accepted by the API.
            options["extra_body"] = {"temperature": request.temperature}
        message = await self._client.messages.create(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=to_anthropic(request.messages),  # type: ignore[arg-type]
            **options,
        )
        return from_anthropic(message)

    async def aclose(self) -> None:
        await self._client.close()


def to_anthropic(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Neutral messages -> Messages API turns: tool results go in user turns, consecutive turns
    of one role are merged (the API wants user and assistant to alternate), empty text dropped."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for b in (_block(block) for block in message.content) if b is not None]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _block(block: Text | Thinking | ToolCall | ToolOutput) -> dict[str, Any] | None:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text} if block.text else None
    if isinstance(block, Thinking):
        if block.redacted is not None:
            return {"type": "redacted_thinking", "data": block.redacted}
        if block.signature is None:
            return None  # thinking from elsewhere cannot be replayed to Anthropic unsigned
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, ToolCall):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_call_id,
        "content": block.content or "(no output)",
        "is_error": block.is_error,
    }


def from_anthropic(message: Any) -> ChatResponse:
    content: list[Text | Thinking | ToolCall] = []
    for block in message.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            content.append(Text(block.text))
        elif kind == "thinking":
            content.append(Thinking(block.thinking, signature=block.signature))
        elif kind == "redacted_thinking":
            content.append(Thinking("", redacted=block.data))
        elif kind == "tool_use":
            content.append(ToolCall(block.id, block.name, dict(block.input or {})))
    usage = message.usage
    # Cached prompt tokens are still prompt tokens (priced here at the input rate).
    token_in = (
        usage.input_tokens
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )
    stop = str(message.stop_reason or "end_turn")
    return ChatResponse(
        content=tuple(content),
        stop=_STOPS.get(stop, stop),
        usage=Usage(token_in, usage.output_tokens),
        model=str(message.model),
    )
