"""The toolbox port: the tools an `llm` agent may call, independent of any provider's wire
format. The agent loop (`infra/runners/llm.py`) turns `ToolSpec`s into the provider's tool
definitions and each tool call into `Toolbox.call`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]  # JSON Schema of the tool's input object


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    is_error: bool = False


class Toolbox(Protocol):
    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    async def call(self, name: str, tool_input: dict[str, Any]) -> ToolResult:
        """Run one tool call. Never raises for a bad call: an unknown tool, a bad input or a
        failing command comes back as a result with `is_error` set, for the agent to read."""
        ...
