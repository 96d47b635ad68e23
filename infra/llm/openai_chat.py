"""The neutral chat over the OpenAI Chat Completions API (`openai.AsyncOpenAI`), which any
OpenAI-compatible server (vLLM, Ollama, gateways) also speaks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import openai

from infra.llm.chat import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ProviderError,
    Text,
    Thinking,
    ToolCall,
    ToolOutput,
    Usage,
)

_STOPS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}


class OpenAIChat:
    """One SDK client; a single attempt per `send` (retries and limits are the caller's)."""

    provider = "openai"

    def __init__(self, api_key: str, base_url: str | None, timeout_s: float) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
            # aiohttp (the SDK's `aiohttp` extra) rather than httpx2: about 40% less of the
            # event loop's CPU a call (docs/performance.md, "Choices, measured"). It opens its
            # session on the first request, in the loop this client belongs to.
            http_client=openai.DefaultAioHttpClient(),
        )

    async def send(self, request: ChatRequest) -> ChatResponse:
        options: dict[str, Any] = {}
        if request.tools:
            options["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
        if request.force_tool:
            options["tool_choice"] = {"type": "function", "function": {"name": request.force_tool}}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        completion = await self._client.chat.completions.create(
            model=request.model,
            messages=to_openai(request.system, request.messages),  # type: ignore[arg-type]
            max_completion_tokens=request.max_tokens,
            **options,
        )
        return from_openai(completion)

    async def aclose(self) -> None:
        await self._client.close()


def to_openai(system: str | None, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Neutral messages -> chat messages: one `tool` message per tool result; thinking is not
    sent back (the API has no place for it)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        if message.role == "tool":
            out.extend(
                {"role": "tool", "tool_call_id": b.tool_call_id, "content": _result(b)}
                for b in message.content
                if isinstance(b, ToolOutput)
            )
            continue
        text = "\n".join(b.text for b in message.content if isinstance(b, Text) and b.text)
        if message.role == "user":
            out.append({"role": "user", "content": text})
            continue
        calls = [
            {
                "id": b.id,
                "type": "function",
                "function": {"name": b.name, "arguments": json.dumps(b.input)},
            }
            for b in message.content
            if isinstance(b, ToolCall)
        ]
        if not text and not calls:
            continue  # an empty response: the API accepts no empty assistant turn
        turn: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            turn["tool_calls"] = calls
        out.append(turn)
    return out


def _result(block: ToolOutput) -> str:
    # The API has no error flag on tool results: say it in the content.
    return f"Error: {block.content}" if block.is_error else block.content or "(no output)"


def from_openai(completion: Any) -> ChatResponse:
    if not completion.choices:
        raise ProviderError("openai", "openai API answered without a choice")
    choice = completion.choices[0]
    message = choice.message
    content: list[Text | Thinking | ToolCall] = []
    reasoning = (message.model_extra or {}).get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append(Thinking(reasoning))
    if message.content:
        content.append(Text(message.content))
    for call in message.tool_calls or ():
        function = getattr(call, "function", None)
        if function is None:
            continue
        content.append(ToolCall(call.id, function.name, _arguments(function.arguments)))
    usage = completion.usage
    finish = str(choice.finish_reason or "stop")
    return ChatResponse(
        content=tuple(content),
        stop=_STOPS.get(finish, finish),
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        model=str(completion.model),
    )


def _arguments(raw: str) -> dict[str, Any]:
    """Tool arguments as the model wrote them; malformed JSON is kept for the tool to reject."""
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        return {"_unparsed_arguments": raw}
    return parsed if isinstance(parsed, dict) else {"_unparsed_arguments": raw}
