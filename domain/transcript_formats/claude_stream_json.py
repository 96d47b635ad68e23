"""`claude-stream-json`: Claude Code's `claude -p … --output-format stream-json --verbose`.

One JSON object per line: `system` (subtype `init` carries the `model`), `assistant` (a
Messages API message with `usage`; Claude Code prints one line per content block, all with the
same `message.id`, so consecutive lines of one id are merged into one step), `user` (tool
results), and a final `result` with the run's duration, cost, usage, turn count and answer.
Other line types of the stream (`stream_event`, hooks, status) are skipped; a line of another
format (a Claude Code session file's, Codex's) is refused.

Claude Code echoes the prompt only with `--replay-user-messages`: the parser adds the task's
prompt as the first user message unless the stream's first message is the user's own text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.transcript_formats.anthropic_messages import api_message, assistant_blocks
from domain.transcript_formats.parsing import (
    Node,
    ParsedOutput,
    TranscriptFormatError,
    json_line,
    message,
    stats,
    with_prompt,
)
from domain.transcripts import Message, Transcript
from domain.vocabulary import TerminationReason

NAME = "claude-stream-json"
# Every line of the stream carries `session_id` (snake case); a session file's lines carry
# `sessionId` and `parentUuid` instead.
STREAM_TYPES = frozenset({"system", "assistant", "user", "result", "stream_event"})
# `result.subtype` -> termination reason; any other `error_*` subtype is an error.
REASONS: dict[str, TerminationReason] = {
    "success": "completed",
    "error_max_turns": "max_steps",
    "error_max_budget_usd": "budget_exceeded",
    "error_during_execution": "error",
}


@dataclass
class _Open:
    """The assistant message being assembled from consecutive lines of one message id."""

    id: str | None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    node: Node | None = None


class ClaudeStreamJsonParser:
    def __init__(self, prompt: str | None = None) -> None:
        self._prompt = prompt
        self._prompt_pending = prompt is not None  # until the first message shows if it echoes
        self._line = 0
        self._messages: list[Message] = []
        self._open: _Open | None = None
        self._model: str | None = None
        self._usage: dict[str, tuple[int, int]] = {}  # per message id, for a missing result
        self._result: Node | None = None

    def feed(self, line: str) -> list[Message]:
        self._line += 1
        node = json_line(line, f"{NAME} line {self._line}")
        if node is None:
            return []
        done: list[Message] = []
        kind = _line_type(node)
        if kind == "system":
            if node.get("subtype").opt_text() == "init" and node.has("model"):
                self._model = node.get("model").text()
        elif kind == "assistant":
            self._start(done)
            self._assistant(node.get("message"), done)
        elif kind == "user":
            self._close(done)
            items = api_message(node.get("message"), default_role="user")
            if self._prompt_pending and any(item.role == "user" for item in items):
                self._prompt_pending = False  # the prompt is echoed (--replay-user-messages)
            self._start(done)
            for item in items:
                self._emit(item, done)
        elif kind == "result":
            self._close(done)
            self._start(done)
            self._result = node
        return done

    def finish(self) -> ParsedOutput:
        done: list[Message] = []
        self._close(done)
        if self._result is None and not any(m.role == "assistant" for m in self._messages):
            problem = "no assistant message and no `result` line in the output"
            raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),))
        messages = with_prompt(self._messages, self._prompt)
        if self._result is None:
            token_in = sum(u[0] for u in self._usage.values()) if self._usage else None
            token_out = sum(u[1] for u in self._usage.values()) if self._usage else None
            recorded = stats(model=self._model, token_in=token_in, token_out=token_out)
            return ParsedOutput(Transcript(messages=messages, stats=recorded))
        return self._from_result(self._result, messages)

    def _from_result(self, result: Node, messages: list[Message]) -> ParsedOutput:
        subtype = result.get("subtype").opt_text() or "success"
        is_error = result.get("is_error").flag()
        answer = result.get("result")
        final_answer = answer.value if isinstance(answer.value, str) else None
        reason: TerminationReason = REASONS.get(
            subtype, "error" if subtype.startswith("error") else "completed"
        )
        if is_error and reason == "completed":
            reason = "error"  # e.g. an invalid API key: subtype success, is_error true
        error = None
        if reason == "error":
            errors = result.get("errors").value
            listed = "; ".join(str(e) for e in errors) if isinstance(errors, list) else None
            error = final_answer or listed or f"Claude Code ended with {subtype}"
        token_in = token_out = cache_read = cache_creation = None
        if result.has("usage"):
            usage = result.get("usage")
            cache_read = usage.get("cache_read_input_tokens").opt_int()
            cache_creation = usage.get("cache_creation_input_tokens").opt_int()
            uncached = usage.get("input_tokens").opt_int()
            token_out = usage.get("output_tokens").opt_int()
            if uncached is not None:
                # Anthropic's input_tokens exclude cached ones; the run read all of them.
                token_in = uncached + (cache_read or 0) + (cache_creation or 0)
        duration_ms = result.get("duration_ms").opt_number()
        recorded = stats(
            model=self._model,
            duration=duration_ms / 1000 if duration_ms is not None else None,
            cost=result.get("total_cost_usd").opt_number(),
            token_in=token_in,
            token_out=token_out,
            cache_read_tokens=cache_read,
            cache_creation_tokens=cache_creation,
            agent_turns=result.get("num_turns").opt_int(),
        )
        transcript = Transcript(
            messages=messages,
            stats=recorded,
            final_answer=final_answer,
            termination_reason=reason,
        )
        return ParsedOutput(transcript, error)

    def _start(self, done: list[Message]) -> None:
        if self._prompt_pending and self._prompt is not None:
            self._prompt_pending = False
            self._emit(message("user", [{"type": "text", "text": self._prompt}]), done)

    def _assistant(self, node: Node, done: list[Message]) -> None:
        message_id = node.get("id").opt_text()
        if self._model is None:
            self._model = node.get("model").opt_text()
        if message_id is not None and node.has("usage"):
            usage = node.get("usage")
            self._usage[message_id] = (
                sum(
                    usage.get(key).opt_int() or 0
                    for key in (
                        "input_tokens",
                        "cache_read_input_tokens",
                        "cache_creation_input_tokens",
                    )
                ),
                usage.get("output_tokens").opt_int() or 0,
            )
        blocks = assistant_blocks(node.get("content"))
        if self._open is None or message_id is None or self._open.id != message_id:
            self._close(done)
            self._open = _Open(message_id, node=node)
        self._open.blocks.extend(blocks)

    def _close(self, done: list[Message]) -> None:
        if self._open is not None:
            self._emit(message("assistant", self._open.blocks, self._open.node), done)
            self._open = None

    def _emit(self, item: Message, done: list[Message]) -> None:
        self._messages.append(item)
        done.append(item)


def _line_type(node: Node) -> str:
    """The line's `type`, once the line is known to be of this stream."""
    if "parentUuid" in node.obj() or node.has("sessionId"):
        node.fail(
            "a Claude Code session line (it has `sessionId`/`parentUuid`), not a "
            f"{NAME} line (expected `type` and `session_id`)"
        )
    kind = node.get("type").text()
    if kind not in STREAM_TYPES and not node.has("session_id"):
        node.get("type").fail(
            f"{kind!r} is not a {NAME} line type (expected one of "
            f"{', '.join(sorted(STREAM_TYPES))}, with a `session_id`)"
        )
    return kind
