"""`claude-code-session`: the session files Claude Code keeps per project,
`~/.claude/projects/<project path with / as ->/<session id>.jsonl`.

Each line has `type`, `uuid`, `parentUuid`, `sessionId`, `timestamp`, `isSidechain`:
`user` and `assistant` lines carry a Messages API `message` (mapped as `anthropic-messages`
maps it; an assistant message is written one line per content block, all with the same
`message.id`, merged into one step and its usage counted once). Skipped: `summary`,
`file-history-snapshot`, `system`, `progress` and `queue-operation` lines, `isMeta` user lines
(caveats Claude Code adds), slash-command lines (`<command-name>`, `<local-command-stdout>`)
and compaction summaries (`isCompactSummary`). Assistant messages Claude Code writes itself
(model `<synthetic>`: API errors, "No response requested.") become system notes, not steps.

Sidechains (`isSidechain`: the work of a sub-agent started by the `Task` tool) are nested
agent work: their steps, tool calls and results stay in order, but the sub-agent's prompt is
not a user turn (it is the `Task` call's input). A file holding only a sidechain (a sub-agent's
own `agent-*.jsonl`) is read as that agent's transcript, prompt included.

Tokens sum each message's usage (cache reads and writes counted as input read); the cost is
the sum of `costUSD` where older versions recorded it. A line without `parentUuid` (a
`claude -p` stream-json line, a Codex line) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.transcript_formats.anthropic_messages import api_message, assistant_blocks
from domain.transcript_formats.parsing import (
    Node,
    ParsedOutput,
    Sample,
    TranscriptFormatError,
    decode_text,
    iso_time,
    json_line,
    message,
    stats,
)
from domain.transcripts import Message, Transcript

NAME = "claude-code-session"
MESSAGE_TYPES = frozenset({"user", "assistant"})
SYNTHETIC = "<synthetic>"  # the model Claude Code names for messages it writes itself
SKIPPED_TYPES = frozenset(
    {"summary", "file-history-snapshot", "system", "progress", "queue-operation"}
)
_COMMAND_MARKERS = (
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "<local-command-stderr>",
)


@dataclass
class _Usage:
    token_in: int = 0
    token_out: int = 0
    cache_read: int = 0
    cache_creation: int = 0


@dataclass
class _Session:
    messages: list[Message] = field(default_factory=list)
    open_id: str | None = None
    open_blocks: list[dict[str, Any]] = field(default_factory=list)
    open_node: Node | None = None
    usage: dict[str, _Usage] = field(default_factory=dict)
    cost: float = 0.0
    costed: bool = False
    model: str | None = None
    sidechain_messages: int = 0

    def close(self) -> None:
        if self.open_node is not None:
            self.messages.append(message("assistant", self.open_blocks, self.open_node))
        self.open_id, self.open_blocks, self.open_node = None, [], None


def read_claude_code_session(file_name: str, data: bytes) -> list[Sample]:
    lines = _message_lines(decode_text(data, NAME))
    only_sidechain = bool(lines) and all(line.get("isSidechain").flag() for line in lines)
    session = _Session()
    metadata: dict[str, Any] = {}
    times: list[str] = []
    for line in lines:
        for key, name in (("sessionId", "session_id"), ("version", "version"), ("cwd", "cwd")):
            if key in line.obj() and name not in metadata:
                metadata[name] = line.obj()[key]
        if isinstance(line.obj().get("timestamp"), str):
            times.append(line.obj()["timestamp"])
        sidechain = line.get("isSidechain").flag() and not only_sidechain
        if line.get("type").text() == "assistant":
            _assistant(session, line, sidechain)
        else:
            _user(session, line, sidechain)
    session.close()
    if not session.messages:
        problem = "no user or assistant messages in the session"
        raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),))
    token = _Usage()
    for usage in session.usage.values():
        token.token_in += usage.token_in
        token.token_out += usage.token_out
        token.cache_read += usage.cache_read
        token.cache_creation += usage.cache_creation
    counted = bool(session.usage)
    recorded = stats(
        model=session.model,
        token_in=token.token_in if counted else None,
        token_out=token.token_out if counted else None,
        cache_read_tokens=token.cache_read if counted else None,
        cache_creation_tokens=token.cache_creation if counted else None,
        cost=round(session.cost, 6) if session.costed else None,
    )
    transcript = Transcript(
        messages=session.messages,
        stats=recorded,
        started_at=iso_time(times[0]) if times else None,
        ended_at=iso_time(times[-1]) if times else None,
    )
    metadata["sidechain_messages"] = session.sidechain_messages
    if session.model is not None:
        metadata["model"] = session.model
    return [Sample(None, ParsedOutput(transcript), metadata)]


def _message_lines(text: str) -> list[Node]:
    """The user and assistant lines, every line checked to be a session line."""
    kept: list[Node] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = json_line(raw, f"{NAME} line {number}")
        if line is None:
            continue
        kind = line.get("type").text()
        if kind in SKIPPED_TYPES:
            continue
        if "parentUuid" not in line.obj() and not line.has("sessionId"):
            line.fail(
                "expected a Claude Code session line (with `parentUuid` and `sessionId`); "
                f"this {kind!r} line has neither (is it claude -p stream-json?)"
            )
        if kind not in MESSAGE_TYPES:
            continue  # a later version's line type (attachments, hooks): not conversation
        if kind == "user" and _skipped_user_line(line):
            continue
        kept.append(line)
    return kept


def _skipped_user_line(line: Node) -> bool:
    if line.get("isMeta").flag() or line.get("isCompactSummary").flag():
        return True
    content = line.get("message").get("content").value
    text = content if isinstance(content, str) else None
    if isinstance(content, list) and len(content) == 1 and isinstance(content[0], dict):
        text = content[0].get("text") if content[0].get("type") == "text" else None
    return isinstance(text, str) and text.lstrip().startswith(_COMMAND_MARKERS)


def _assistant(session: _Session, line: Node, sidechain: bool) -> None:
    node = line.get("message")
    message_id = node.get("id").opt_text()
    model = node.get("model").opt_text()
    if model == SYNTHETIC:
        # Written by Claude Code, not the model (an API error, "No response requested."):
        # a system note, not a step.
        session.close()
        texts = [b["text"] for b in assistant_blocks(node.get("content")) if b["type"] == "text"]
        session.messages.append(message("system", ["[Claude Code] " + "\n".join(texts)], node))
        return
    if model:
        session.model = session.model or model
    if message_id is not None and node.has("usage"):
        usage = node.get("usage")
        read = usage.get("cache_read_input_tokens").opt_int() or 0
        written = usage.get("cache_creation_input_tokens").opt_int() or 0
        # Every line of a message repeats its usage: the last one counts.
        session.usage[message_id] = _Usage(
            (usage.get("input_tokens").opt_int() or 0) + read + written,
            usage.get("output_tokens").opt_int() or 0,
            read,
            written,
        )
    cost = line.get("costUSD").opt_number()
    if cost is not None:
        session.cost += cost
        session.costed = True
    blocks = assistant_blocks(node.get("content"))
    if session.open_node is None or message_id is None or session.open_id != message_id:
        session.close()
        session.open_id, session.open_node = message_id, node
        session.sidechain_messages += sidechain
    session.open_blocks.extend(blocks)


def _user(session: _Session, line: Node, sidechain: bool) -> None:
    session.close()
    for item in api_message(line.get("message"), default_role="user"):
        if sidechain and item.role == "user":
            continue  # the sub-agent's prompt: the Task call's input, not a user turn
        session.sidechain_messages += sidechain
        session.messages.append(item)
