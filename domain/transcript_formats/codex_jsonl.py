"""`codex-jsonl`: the JSONL events of OpenAI Codex's `codex exec --json`.

Events: `thread.started`, `turn.started`, `item.started` / `item.updated` / `item.completed`
(item types `agent_message` and `reasoning` with `text`; `command_execution` with `command`,
`aggregated_output`, `exit_code`, `status`; `file_change`, `mcp_tool_call`, `web_search`,
`todo_list`, `error`), `turn.completed` with `usage`, and `turn.failed` / `error` when it fails.

Codex's stream has no model-response boundaries, so consecutive reasoning, messages and tool
calls are one assistant step, closed by a tool result or the end of the turn. Commands become
`shell` calls, file changes `apply_patch`, plan updates `update_plan`, MCP calls
`<server>.<tool>`. The prompt is not echoed: the parser adds the task's prompt first. Codex
does not report its model or cost; the runner takes the model from the agent definition.
"""

from __future__ import annotations

import json
from typing import Any

from domain.transcript_formats.parsing import (
    Node,
    ParsedOutput,
    TranscriptFormatError,
    json_line,
    message,
    stats,
    with_prompt,
)
from domain.transcripts import Message, TerminationReason, Transcript

NAME = "codex-jsonl"


class CodexJsonlParser:
    def __init__(self, prompt: str | None = None) -> None:
        self._prompt = prompt
        self._line = 0
        self._messages: list[Message] = []
        self._pending: list[dict[str, Any]] = []  # the open assistant step's blocks
        self._called: set[str] = set()  # items whose tool call is already recorded
        self._plans: dict[str, Any] = {}  # the last plan recorded, per todo_list item
        self._plan_updates = 0
        self._final: str | None = None
        self._usage: dict[str, int] = {}
        self._turn_completed = False
        self._error: str | None = None
        self._events = 0

    def feed(self, line: str) -> list[Message]:
        self._line += 1
        node = json_line(line, f"{NAME} line {self._line}")
        if node is None:
            return []
        done: list[Message] = []
        if not self._messages and self._prompt is not None:
            self._emit(message("user", [{"type": "text", "text": self._prompt}]), done)
        self._events += 1
        kind = node.get("type").text()
        if kind.startswith("item."):
            self._item(kind.removeprefix("item."), node.get("item"), done)
        elif kind == "turn.completed":
            self._turn_completed = True
            if node.has("usage"):
                for key, value in node.get("usage").obj().items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        self._usage[key] = self._usage.get(key, 0) + value
            self._flush(done)
        elif kind == "turn.failed":
            error = node.get("error")
            self._error = (error.get("message").opt_text() if error.has("message") else None) or (
                "the turn failed"
            )
            self._flush(done)
        elif kind == "error":
            text = node.get("message").opt_text() or "error"
            if not text.startswith("Reconnecting"):  # retry notices; the turn goes on
                self._error = text
        return done

    def finish(self) -> ParsedOutput:
        done: list[Message] = []
        self._flush(done)
        if not self._events:
            problem = "no events in the output"
            raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),))
        reason: TerminationReason | None = None
        if self._error is not None:
            reason = "error"
        elif self._turn_completed:
            reason = "completed"
        recorded = stats(
            token_in=self._usage.get("input_tokens"),
            token_out=self._usage.get("output_tokens"),
            cached_input_tokens=self._usage.get("cached_input_tokens"),
            reasoning_output_tokens=self._usage.get("reasoning_output_tokens"),
        )
        transcript = Transcript(
            messages=with_prompt(self._messages, self._prompt),
            stats=recorded,
            final_answer=self._final,
            termination_reason=reason,
        )
        return ParsedOutput(transcript, self._error)

    def _item(self, event: str, item: Node, done: list[Message]) -> None:
        kind = item.get("type").text()
        item_id = item.get("id").opt_text() or f"line_{self._line}"
        if kind == "todo_list":
            plan = item.get("items").value
            if plan != self._plans.get(item_id):
                self._plans[item_id] = plan
                self._plan_updates += 1
                self._call(f"{item_id}.{self._plan_updates}", "update_plan", {"items": plan})
            return
        if kind in ("command_execution", "mcp_tool_call") and item_id not in self._called:
            self._called.add(item_id)
            if kind == "command_execution":
                self._call(item_id, "shell", {"command": item.get("command").text()})
            else:
                name = f"{item.get('server').text()}.{item.get('tool').text()}"
                self._call(item_id, name, item.get("arguments").value or {})
        if event != "completed":
            return
        if kind == "agent_message":
            self._final = item.get("text").text()
            self._pending.append({"type": "text", "text": self._final})
        elif kind == "reasoning":
            self._pending.append({"type": "thinking", "thinking": item.get("text").text()})
        elif kind == "command_execution":
            code = item.get("exit_code").opt_int()
            failed = item.get("status").opt_text() == "failed" or (code is not None and code != 0)
            output = item.get("aggregated_output").opt_text() or ""
            if code is not None and code != 0:
                output = f"{output}\n[exit code {code}]" if output else f"[exit code {code}]"
            self._result(item_id, output, failed, done)
        elif kind == "mcp_tool_call":
            self._result(item_id, *_mcp_result(item), done)
        elif kind == "file_change":
            changes = [
                {"path": c.get("path").text(), "kind": c.get("kind").opt_text() or "update"}
                for c in item.get("changes").items()
            ]
            self._call(item_id, "apply_patch", {"changes": changes})
            failed = item.get("status").opt_text() == "failed"
            summary = "\n".join(f"{c['kind']} {c['path']}" for c in changes)
            self._result(item_id, ("failed: " if failed else "") + summary, failed, done)
        elif kind == "web_search":
            self._call(item_id, "web_search", {"query": item.get("query").opt_text() or ""})
        elif kind == "error":
            self._flush(done)
            text = item.get("message").opt_text() or "error"
            self._emit(message("system", [{"type": "text", "text": f"[codex] {text}"}]), done)

    def _call(self, call_id: str, name: str, tool_input: Any) -> None:
        self._called.add(call_id)
        block = {"type": "tool_call", "id": call_id, "name": name, "input": tool_input}
        self._pending.append(block)

    def _result(self, call_id: str, content: str, is_error: bool, done: list[Message]) -> None:
        self._flush(done)
        block = {
            "type": "tool_result",
            "tool_call_id": call_id,
            "content": content,
            "is_error": is_error,
        }
        self._emit(message("tool", [block]), done)

    def _flush(self, done: list[Message]) -> None:
        if self._pending:
            self._emit(message("assistant", self._pending), done)
            self._pending = []

    def _emit(self, item: Message, done: list[Message]) -> None:
        self._messages.append(item)
        done.append(item)


def _mcp_result(item: Node) -> tuple[str, bool]:
    if item.has("error"):
        error = item.get("error")
        return error.get("message").opt_text() or "the tool call failed", True
    failed = item.get("status").opt_text() == "failed"
    if not item.has("result"):
        return "", failed
    result = item.get("result")
    texts = [
        block.get("text").text()
        for block in (result.get("content").items() if result.has("content") else iter(()))
        if block.get("type").opt_text() == "text"
    ]
    if not texts and result.has("structured_content"):
        texts = [json.dumps(result.get("structured_content").value)]
    return "\n".join(texts), failed
