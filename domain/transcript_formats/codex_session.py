"""`codex-session`: the session files Codex keeps, `~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`.

Each line is `{"timestamp", "type", "payload"}`: `session_meta` (the session id, cwd, Codex
version: kept as metadata), `turn_context` (the `model`), `response_item` (Responses API items:
the conversation itself, mapped as `openai-responses` maps them), `event_msg` (UI events that
repeat the items; only `token_count` (the session's running token total), `task_complete`,
`turn_aborted` and `error` are read) and `compacted`. The context Codex injects as user
messages (`<environment_context>`, `<user_instructions>`, AGENTS.md) becomes system messages:
the user did not type it.

Files from Codex before the `payload` wrapper (a first line `{"id", "timestamp",
"instructions"}`, then bare items and `{"record_type": "state"}` lines) are read too. A line
of another format (`codex exec --json` events, Claude Code lines) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.transcript_formats.codex_jsonl import usage_stats
from domain.transcript_formats.openai_responses import ResponseItems
from domain.transcript_formats.parsing import (
    Node,
    ParsedOutput,
    Sample,
    TranscriptFormatError,
    decode_text,
    iso_time,
    json_line,
)
from domain.transcripts import Transcript
from domain.vocabulary import TerminationReason

NAME = "codex-session"
LINE_TYPES = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted"})
_INJECTED = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions")
_LEGACY_ITEMS = frozenset(
    {
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "local_shell_call",
        "custom_tool_call",
        "custom_tool_call_output",
        "web_search_call",
    }
)


def read_codex_session(file_name: str, data: bytes) -> list[Sample]:
    session = _Session()
    for number, raw in enumerate(decode_text(data, NAME).splitlines(), start=1):
        line = json_line(raw, f"{NAME} line {number}")
        if line is not None:
            session.read(line)
    return [session.sample()]


@dataclass
class _Session:
    """What a session file says so far: its conversation, metadata, usage and ending."""

    items: ResponseItems = field(default_factory=lambda: ResponseItems(strict=False))
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    reason: TerminationReason | None = None
    error: str | None = None
    final: str | None = None
    times: list[str] = field(default_factory=list)
    lines: int = 0

    def read(self, line: Node) -> None:
        self.lines += 1
        if isinstance(line.value.get("timestamp"), str):
            self.times.append(line.value["timestamp"])
        kind = line.get("type").opt_text()
        if kind is None or not line.has("payload"):
            _legacy_line(line, self.lines, self.items, self.metadata)
            return
        payload = line.get("payload")
        if kind == "session_meta":
            for key in ("id", "cwd", "cli_version", "originator", "model_provider", "source"):
                if payload.has(key):
                    self.metadata[key] = payload.get(key).value
        elif kind == "turn_context":
            self.model = payload.get("model").opt_text() or self.model
        elif kind == "response_item":
            self.items.add(_as_system_when_injected(payload))
        elif kind == "event_msg":
            self._event(payload)
        # Else a later Codex's line type: its payload is not conversation we know.

    def _event(self, payload: Node) -> None:
        event = payload.get("type").opt_text()
        if event == "token_count" and payload.get("info").has("total_token_usage"):
            total = payload.get("info").get("total_token_usage").obj()
            self.usage = {k: v for k, v in total.items() if isinstance(v, int)}
        elif event == "task_complete":
            self.reason = "completed"
            self.final = payload.get("last_agent_message").opt_text() or self.final
        elif event == "turn_aborted":
            self.reason = "cancelled"
        elif event == "error":
            self.reason, self.error = "error", payload.get("message").opt_text() or "error"

    def sample(self) -> Sample:
        if not self.lines:
            problem = "no lines in the file"
            raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),))
        messages = self.items.finish()
        if not messages and not self.metadata:
            problem = "no session_meta and no conversation items: not a Codex session file"
            raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),))
        recorded = usage_stats(self.model, self.usage)
        times = self.times
        transcript = Transcript(
            messages=messages,
            stats=recorded,
            final_answer=self.final or self.items.final_answer,
            termination_reason=self.reason,
            started_at=iso_time(times[0]) if times else None,
            ended_at=iso_time(times[-1]) if times else None,
        )
        if self.model is not None:
            self.metadata["model"] = self.model
        return Sample(None, ParsedOutput(transcript, self.error), self.metadata)


def _legacy_line(line: Node, number: int, items: ResponseItems, meta: dict[str, Any]) -> None:
    """A line of a session file from before the `payload` wrapper."""
    data = line.obj()
    kind = data.get("type")
    if "record_type" in data:
        return
    if number == 1 and "id" in data and "timestamp" in data and kind is None:
        meta["id"] = data["id"]
        return
    if kind in _LEGACY_ITEMS:
        items.add(_as_system_when_injected(line))
        return
    if kind is None:
        line.fail(
            "expected a Codex session line: `{timestamp, type, payload}` (type session_meta, "
            "turn_context, response_item, event_msg or compacted)"
        )
    line.get("type").fail(
        f"{kind!r} is not a Codex session line type (expected session_meta, turn_context, "
        "response_item, event_msg or compacted, with a `payload`)"
    )


def _as_system_when_injected(item: Node) -> Node:
    """Codex's injected context (environment, AGENTS.md) as a system message."""
    data = item.value
    if not isinstance(data, dict) or data.get("role") != "user":
        return item
    content = data.get("content")
    texts = (
        [content]
        if isinstance(content, str)
        else [p.get("text", "") for p in content if isinstance(p, dict)]
        if isinstance(content, list)
        else []
    )
    if texts and all(str(t).lstrip().startswith(_INJECTED) for t in texts):
        return Node({**data, "role": "system"}, item.where, item.loc)
    return item
