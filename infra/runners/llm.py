"""The `llm` runner: the built-in tool-using agent loop over the Anthropic or OpenAI SDK
(docs/spec.md §6).

A run gets a fresh workspace (the environment's template copied in) and the environment's tools
over it. The model sees the system prompt, then the task's prompt as the first user message,
and answers; its tool calls are run and their results sent back, until it ends its turn without
calling a tool (`completed`), uses up `max_steps` responses (`max_steps`), or spends more than
`limits.max_cost_usd` (`budget_exceeded`). With a simulated user (`task.user`), the persona
answers each ended turn until it is satisfied or has spoken `max_turns` times. Every message is
reported as it happens. The task's `command` criterion is checked in the workspace before the
workspace is removed. The time limit is the executor's: cancelling the run kills the commands
it started and removes its workspace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from domain.definitions import Limits, LlmAgent, TaskDefinition
from domain.secrets import SecretUnavailable, expand
from domain.stats import ModelPrice
from domain.transcripts import Transcript, transcript_from_object
from infra.llm.chat import (
    ChatClient,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Meter,
    ProviderError,
    Text,
    Thinking,
    ToolCall,
    ToolOutput,
)
from infra.llm.prices import MODEL_PRICES
from infra.llm.providers import Providers, shared_providers
from infra.llm.simulated_user import SimulatedUser
from infra.runners.base import RunnerError, RunOutcome, RunProgress, RunRequest
from infra.runners.toolbox import Toolbox
from infra.runners.tools import build_toolbox
from infra.runners.workspace import Workspace


class CommandCheck(Protocol):
    async def check(self, command: str, *, timeout_s: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class Sandbox:
    """What a run works with: its tools, and the workspace the `command` criterion runs in."""

    toolbox: Toolbox
    workspace: CommandCheck


SandboxFactory = Callable[[LlmAgent, str], AbstractAsyncContextManager[Sandbox]]


@asynccontextmanager
async def workspace_sandbox(agent: LlmAgent, run_id: str) -> AsyncIterator[Sandbox]:
    """A fresh `Workspace` from the agent's template and the agent's tools over it."""
    docs = await asyncio.to_thread(Path(agent.docs).expanduser) if agent.docs else None
    async with Workspace.create(agent.workspace, run_id) as workspace:
        toolbox = build_toolbox(
            agent.tools,
            workspace,
            docs,
            # Refused here, before the first step, when the operator allows less.
            network=workspace.settings.network_for(agent.network)
            if "shell" in agent.tools
            else "none",
            shell_timeout_s=agent.shell_timeout_s,
        )
        yield Sandbox(toolbox, workspace)


class AgentFailed(RunnerError):
    """The run is `errored` (e.g. its provider failed for good); `transcript` is what the
    agent did until then, kept so the failure can be read in context."""

    def __init__(self, message: str, transcript: Transcript) -> None:
        super().__init__(message)
        self.transcript = transcript


class LlmRunner:
    """Runs `llm` agents. Provider clients come from `providers` (default: the event loop's
    shared ones); tools and workspace from `sandbox` (default: a real per-run workspace)."""

    def __init__(
        self,
        providers: Providers | None = None,
        *,
        prices: Mapping[str, ModelPrice] = MODEL_PRICES,
        sandbox: SandboxFactory = workspace_sandbox,
    ) -> None:
        self._providers = providers
        self._prices = prices
        self._sandbox = sandbox

    async def run(self, request: RunRequest) -> RunOutcome:
        try:
            agent = LlmAgent.model_validate(request.environment["agent"])
            task = TaskDefinition.model_validate(request.task)
            limits = Limits.model_validate(request.environment.get("limits") or {})
        except ValidationError as error:
            raise RunnerError(f"invalid llm environment or task: {error}") from None
        if limits.max_cost_usd is not None and agent.model not in self._prices:
            raise RunnerError(
                f"limits.max_cost_usd is set but model {agent.model!r} has no price, so the "
                "budget cannot be enforced (known prices: infra/llm/prices.py)"
            )
        try:
            # The product's own key (a secret) if the environment names one; else the server's,
            # which the provider layer sends only where the operator allows.
            api_key = (
                expand(agent.api_key, request.secrets, "agent.api_key").strip()
                if agent.api_key
                else None
            )
            if api_key == "":
                raise RunnerError(f"agent.api_key: the secret {agent.api_key} is empty")
            providers = self._providers or shared_providers()
            client = providers.client(agent.provider, agent.base_url, api_key)
            user = None
            if task.user is not None:
                user = SimulatedUser(
                    providers.for_model(task.user.model),
                    task.user.model,
                    task.user.persona,
                    Meter(self._prices),
                )
        except (ProviderError, ValueError, SecretUnavailable) as error:
            raise RunnerError(str(error)) from None
        agent_loop = _AgentLoop(request, agent, task, limits, client, user, self._prices)
        async with self._sandbox(agent, request.run_id) as sandbox:
            try:
                reason = await agent_loop.run(sandbox.toolbox)
            except ProviderError as error:
                raise AgentFailed(str(error), agent_loop.transcript("error")) from None
            except RunnerError:
                raise
            except Exception as error:
                message = f"the agent loop failed: {type(error).__name__}: {error}"
                raise AgentFailed(message, agent_loop.transcript("error")) from error
            checks: dict[str, bool] = {}
            command = task.success.command if task.success else None
            if command:
                checks["command"] = await sandbox.workspace.check(
                    command, timeout_s=agent.shell_timeout_s
                )
        return RunOutcome(agent_loop.transcript(reason), None, reason, checks)


class _AgentLoop:
    """One run's conversation: what the provider is sent, and the transcript it becomes."""

    def __init__(
        self,
        request: RunRequest,
        agent: LlmAgent,
        task: TaskDefinition,
        limits: Limits,
        client: ChatClient,
        user: SimulatedUser | None,
        prices: Mapping[str, ModelPrice],
    ) -> None:
        self.request = request
        self.agent = agent
        self.task = task
        self.limits = limits
        self.client = client
        self.user = user
        self.meter = Meter(prices)
        self.progress: RunProgress = request.progress
        self.chat: list[ChatMessage] = []
        self.messages: list[dict[str, Any]] = []
        self.visible: list[tuple[str, str]] = []  # what a user sees: (role, text)
        self.started = datetime.now(UTC)
        self.clock = time.monotonic()

    async def run(self, toolbox: Toolbox) -> str:
        self._record({"role": "system", "content": self.agent.system_prompt})
        self._say(self.task.prompt)
        steps = replies = 0
        specs = list(toolbox.specs)
        while True:
            if steps >= self.agent.max_steps:
                return "max_steps"
            response = await self.client.chat(
                ChatRequest(
                    model=self.agent.model,
                    system=self.agent.system_prompt,
                    messages=self.chat,
                    tools=specs,
                    max_tokens=self.agent.max_tokens,
                    temperature=self.agent.temperature,
                )
            )
            steps += 1
            self.meter.add(self.agent.model, response.usage)
            self._answer(response)
            budget = self.limits.max_cost_usd
            if budget is not None and self.meter.cost > budget:
                return "budget_exceeded"
            if response.tool_calls:
                await self._call_tools(toolbox, response.tool_calls)
                continue
            if self.user is None or self.task.user is None or replies >= self.task.user.max_turns:
                return "completed"
            message = await self.user.reply(self.visible)
            if message is None:
                return "completed"
            replies += 1
            self._say(message)

    def _record(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.progress.message(message)

    def _say(self, text: str) -> None:
        self.chat.append(ChatMessage.user(text))
        self.visible.append(("user", text))
        self._record({"role": "user", "content": text})

    def _answer(self, response: ChatResponse) -> None:
        self.chat.append(response.as_message())
        if response.text:
            self.visible.append(("assistant", response.text))
        self._record({"role": "assistant", "content": _blocks(response.content)})

    async def _call_tools(self, toolbox: Toolbox, calls: Sequence[ToolCall]) -> None:
        outputs: list[ToolOutput] = []
        for call in calls:
            result = await toolbox.call(call.name, call.input)
            outputs.append(ToolOutput(call.id, result.content, result.is_error))
        self.chat.append(ChatMessage("tool", tuple(outputs)))
        self._record(
            {
                "role": "tool",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_call_id": o.tool_call_id,
                        "content": o.content,
                        "is_error": o.is_error,
                    }
                    for o in outputs
                ],
            }
        )

    def transcript(self, reason: str) -> Transcript:
        meter = self.meter
        stats: dict[str, Any] = {
            "duration": time.monotonic() - self.clock,
            "token_in": meter.usage.token_in,
            "token_out": meter.usage.token_out,
            "cost": meter.cost if meter.priced else None,
            "model": self.agent.model,
        }
        if self.user is not None:
            # The simulated user's spend is the task's, not the agent's: kept beside it.
            user = self.user.meter
            stats["user_token_in"] = user.usage.token_in
            stats["user_token_out"] = user.usage.token_out
            stats["user_cost"] = user.cost if user.priced else None
        return transcript_from_object(
            {
                "version": 1,
                "task_id": self.request.task_id,
                "environment_id": self.request.environment_id,
                "termination_reason": reason,
                "started_at": self.started.isoformat(),
                "ended_at": datetime.now(UTC).isoformat(),
                "stats": stats,
                "messages": self.messages,
            },
            name=f"run {self.request.run_id}",
        )


def _blocks(content: Sequence[Text | Thinking | ToolCall]) -> list[dict[str, Any]]:
    """A model response as transcript blocks (docs/spec.md §3)."""
    blocks: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, Thinking):
            if block.thinking:
                blocks.append({"type": "thinking", "thinking": block.thinking})
        elif isinstance(block, Text):
            if block.text:
                blocks.append({"type": "text", "text": block.text})
        else:
            blocks.append(
                {"type": "tool_call", "id": block.id, "name": block.name, "input": block.input}
            )
    return blocks
