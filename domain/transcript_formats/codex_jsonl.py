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

Codex before 0.44 printed another shape: a config summary object (`model`, `workdir`, …), the
prompt (`{"prompt": …}`), then `{"id", "msg": {"type", …}}` events (`agent_message`,
`agent_reasoning`, `exec_command_begin`/`_end`, `patch_apply_begin`/`_end`,
`mcp_tool_call_begin`/`_end`, `web_search_end`, `plan_update`, `token_count`,
`task_complete`, `error`). Both shapes map to the same transcript. A line of neither shape (a
Claude Code line, a Codex session file's `session_meta`) is refused.
"""

from __future__ import annotations

import json
import shlex
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
from domain.transcripts import Message, RecordedStats, Transcript
from domain.vocabulary import TerminationReason

NAME = "codex-jsonl"
EVENTS = frozenset(
    {
        "thread.started",
        "turn.started",
        "turn.completed",
        "turn.failed",
        "item.started",
        "item.updated",
        "item.completed",
        "error",
    }
)


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
        self._model: str | None = None  # from the pre-0.44 config summary
        self._prompt_pending = prompt is not None  # until a line shows if the prompt is echoed
        self._legacy_usage: dict[str, int] = {}  # pre-0.44 cumulative `token_count`

    def feed(self, line: str) -> list[Message]:
        self._line += 1
        node = json_line(line, f"{NAME} line {self._line}")
        if node is None:
            return []
        done: list[Message] = []
        if node.has("msg") and "id" in node.obj():
            self._events += 1
            self._legacy(node.get("msg"), done)
            return done
        if not self._events and not node.has("type"):
            self._legacy_header(node, done)
            return done
        kind = _event_kind(node)
        self._events += 1
        self._start(done)
        if kind.startswith("item."):
            self._item(kind.removeprefix("item."), node.get("item"), done)
        elif kind == "turn.completed":
            self._turn_completed = True
            if node.has("usage"):
                self._add_usage(node.get("usage"))
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

    def _add_usage(self, usage: Node) -> None:
        for key, value in usage.obj().items():
            if isinstance(value, int) and not isinstance(value, bool):
                self._usage[key] = self._usage.get(key, 0) + value

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
        usage = self._usage or self._legacy_usage
        recorded = usage_stats(self._model, usage)
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
        self._item_calls(kind, item_id, item)
        if event == "completed":
            self._item_completed(kind, item_id, item, done)

    def _item_calls(self, kind: str, item_id: str, item: Node) -> None:
        """The tool call an item shows from its first event: a plan, a command, an MCP call."""
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

    def _item_completed(self, kind: str, item_id: str, item: Node, done: list[Message]) -> None:
        """What a completed item adds: text, thinking, a tool result or an error."""
        if kind == "agent_message":
            self._final = item.get("text").text()
            self._pending.append({"type": "text", "text": self._final})
        elif kind == "reasoning":
            self._pending.append({"type": "thinking", "thinking": item.get("text").text()})
        elif kind == "command_execution":
            self._result(item_id, *_command_result(item), done)
        elif kind == "mcp_tool_call":
            self._result(item_id, *_mcp_result(item), done)
        elif kind == "file_change":
            self._file_change(item_id, item, done)
        elif kind == "web_search":
            self._call(item_id, "web_search", {"query": item.get("query").opt_text() or ""})
        elif kind == "error":
            self._flush(done)
            text = item.get("message").opt_text() or "error"
            self._emit(message("system", [{"type": "text", "text": f"[codex] {text}"}]), done)

    def _file_change(self, item_id: str, item: Node, done: list[Message]) -> None:
        changes = [
            {"path": c.get("path").text(), "kind": c.get("kind").opt_text() or "update"}
            for c in item.get("changes").items()
        ]
        self._call(item_id, "apply_patch", {"changes": changes})
        failed = item.get("status").opt_text() == "failed"
        summary = "\n".join(f"{c['kind']} {c['path']}" for c in changes)
        self._result(item_id, ("failed: " if failed else "") + summary, failed, done)

    def _start(self, done: list[Message]) -> None:
        if self._prompt_pending and self._prompt is not None:
            self._prompt_pending = False
            self._emit(message("user", [{"type": "text", "text": self._prompt}]), done)

    def _legacy_header(self, node: Node, done: list[Message]) -> None:
        """The lines before the first pre-0.44 event: the config summary, then the prompt."""
        if node.has("prompt"):
            self._prompt_pending = False  # echoed: the output's own prompt is the user message
            self._emit(message("user", [{"type": "text", "text": node.get("prompt").text()}]), done)
        elif node.has("model") or node.has("workdir") or node.has("sandbox"):
            self._model = node.get("model").opt_text()
        else:
            node.fail(
                "expected a codex exec --json event (with `type`), or before Codex 0.44 a "
                "config summary, the `prompt` or an `{id, msg}` event"
            )

    def _legacy(self, msg: Node, done: list[Message]) -> None:
        """One pre-0.44 `{"id", "msg"}` event."""
        kind = msg.get("type").text()
        if kind == "user_message":
            text = msg.get("message").opt_text() or ""
            if self._prompt_pending:
                self._prompt_pending = False
            self._flush(done)
            self._emit(message("user", [{"type": "text", "text": text}]), done)
            return
        if kind in ("session_configured", "task_started"):
            if kind == "session_configured" and self._model is None:
                self._model = msg.get("model").opt_text()
            return
        self._start(done)
        if not self._legacy_tool_event(kind, msg, done):
            self._legacy_turn_event(kind, msg, done)

    def _legacy_tool_event(self, kind: str, msg: Node, done: list[Message]) -> bool:
        """A pre-0.44 tool call or result; whether `kind` was one."""
        if kind == "exec_command_begin":
            self._call(
                msg.get("call_id").text(), "shell", {"command": _command(msg.get("command"))}
            )
        elif kind == "exec_command_end":
            self._legacy_exec_end(msg, done)
        elif kind == "patch_apply_begin":
            changes = [
                {"path": path, "kind": _change_kind(change)}
                for path, change in msg.get("changes").obj().items()
            ]
            self._call(msg.get("call_id").text(), "apply_patch", {"changes": changes})
        elif kind == "patch_apply_end":
            failed = not msg.get("success").flag()
            output = msg.get("stderr").opt_text() if failed else msg.get("stdout").opt_text()
            self._result(msg.get("call_id").text(), output or "", failed, done)
        elif kind == "mcp_tool_call_begin":
            invocation = msg.get("invocation")
            name = f"{invocation.get('server').text()}.{invocation.get('tool').text()}"
            arguments = invocation.get("arguments").value or {}
            self._call(msg.get("call_id").text(), name, arguments)
        elif kind == "mcp_tool_call_end":
            self._result(msg.get("call_id").text(), *_legacy_mcp_result(msg.get("result")), done)
        elif kind == "web_search_end":
            query = msg.get("query").opt_text() or ""
            self._call(msg.get("call_id").text(), "web_search", {"query": query})
        elif kind == "plan_update":
            self._plan_updates += 1
            self._call(
                f"plan.{self._plan_updates}", "update_plan", {"items": msg.get("plan").value}
            )
        else:
            return False
        return True

    def _legacy_turn_event(self, kind: str, msg: Node, done: list[Message]) -> None:
        """A pre-0.44 event of the turn itself: text, thinking, usage, its end or an error."""
        if kind == "agent_message":
            self._final = msg.get("message").text()
            self._pending.append({"type": "text", "text": self._final})
        elif kind == "agent_reasoning":
            self._pending.append({"type": "thinking", "thinking": msg.get("text").text()})
        elif kind == "token_count":
            self._legacy_tokens(msg)
        elif kind == "task_complete":
            self._turn_completed = True
            last = msg.get("last_agent_message").opt_text()
            if last is not None:
                self._final = last
            self._flush(done)
        elif kind == "error":
            self._error = msg.get("message").opt_text() or "error"
        elif kind == "turn_aborted":
            self._error = f"the turn was aborted ({msg.get('reason').opt_text() or 'unknown'})"

    def _legacy_exec_end(self, msg: Node, done: list[Message]) -> None:
        code = msg.get("exit_code").opt_int()
        output = msg.get("aggregated_output").opt_text() or "".join(
            part for part in (msg.get("stdout").opt_text(), msg.get("stderr").opt_text()) if part
        )
        failed = code is not None and code != 0
        if failed:
            output = f"{output}\n[exit code {code}]" if output else f"[exit code {code}]"
        self._result(msg.get("call_id").text(), output, failed, done)

    def _legacy_tokens(self, msg: Node) -> None:
        if msg.has("info"):  # later versions: the session's running total
            total = msg.get("info").get("total_token_usage")
            if total.value is not None:
                self._legacy_usage = {k: v for k, v in total.obj().items() if isinstance(v, int)}
            return
        for key, value in msg.obj().items():  # earlier: one model response's usage
            if isinstance(value, int) and not isinstance(value, bool):
                self._legacy_usage[key] = self._legacy_usage.get(key, 0) + value

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


def _command(node: Node) -> str:
    """A command as Codex's later events print it: argv joined as a shell would read it."""
    if isinstance(node.value, list):
        return shlex.join(str(part) for part in node.value)
    return node.text()


def _change_kind(change: Any) -> str:
    """`{"add": {…}}` (externally tagged) or `{"type": "add", …}` -> add/delete/update."""
    if isinstance(change, dict):
        if isinstance(change.get("type"), str):
            return str(change["type"])
        for kind in ("add", "delete", "update"):
            if kind in change:
                return kind
    return "update"


def _legacy_mcp_result(result: Node) -> tuple[str, bool]:
    """`{"Ok": CallToolResult}` or `{"Err": "message"}`."""
    if result.has("Err"):
        return str(result.get("Err").value), True
    ok = result.get("Ok") if result.has("Ok") else result
    if ok.value is None:
        return "", False
    texts = [
        block.get("text").text()
        for block in (ok.get("content").items() if ok.has("content") else iter(()))
        if block.get("type").opt_text() == "text"
    ]
    return "\n".join(texts), ok.get("isError").flag() or ok.get("is_error").flag()


def _event_kind(node: Node) -> str:
    """A line's event type, refusing what is no Codex event."""
    kind = node.get("type").text()
    if kind not in EVENTS and "." not in kind:
        # Codex names its events `thread.*`, `turn.*`, `item.*`; a later version's new
        # dotted event is skipped, a line of another format is not.
        node.get("type").fail(
            f"{kind!r} is not a codex exec --json event (expected thread.started, "
            "turn.started, item.started/updated/completed, turn.completed, turn.failed or "
            'error; or, before Codex 0.44, {"id", "msg"} lines)'
        )
    return kind


def _command_result(item: Node) -> tuple[str, bool]:
    """A completed command's output (with its exit code when not 0), and whether it failed."""
    code = item.get("exit_code").opt_int()
    failed = item.get("status").opt_text() == "failed" or (code is not None and code != 0)
    output = item.get("aggregated_output").opt_text() or ""
    if code is not None and code != 0:
        output = f"{output}\n[exit code {code}]" if output else f"[exit code {code}]"
    return output, failed


def usage_stats(model: str | None, usage: dict[str, int]) -> RecordedStats:
    """The stats of Codex's token usage (as `turn.completed`, `token_count` and session files
    name its counts)."""
    return stats(
        model=model,
        token_in=usage.get("input_tokens"),
        token_out=usage.get("output_tokens"),
        cached_input_tokens=usage.get("cached_input_tokens"),
        reasoning_output_tokens=usage.get("reasoning_output_tokens"),
    )
