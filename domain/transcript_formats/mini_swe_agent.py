"""`mini-swe-agent`: mini-SWE-agent's trajectory files (`*.traj.json`):
`{"info": {"exit_status", "submission", "model_stats", "config", "mini_version"}, "messages":
[…], "trajectory_format": "mini-swe-agent-1…"}`.

The agent acts by writing one bash block per reply (```` ```bash ```` before 2.0,
```` ```mswea_bash_command ```` or `extra.actions` since): each becomes a `bash` tool call,
and the observation that follows (a user message `<returncode>…</returncode><output>…`) its
result, an error when the return code is not 0. Tool-calling models' `tool_calls` and `tool`
messages map as in `openai-messages`. The final empty user message that records the exit is
dropped. Stats: `info.model_stats.instance_cost` -> cost, the model from the config, tokens
summed from each reply's recorded `usage` where present; `exit_status` `Submitted` ->
completed, `LimitsExceeded` -> max_steps, anything else an error; the submission is the final
answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from domain.transcript_formats.parsing import (
    DocumentParser,
    Node,
    ParsedOutput,
    message,
    stats,
)
from domain.transcripts import Message, Transcript
from domain.vocabulary import TerminationReason

NAME = "mini-swe-agent"
_ACTION = re.compile(r"```(?:bash|mswea_bash_command)\s*\n(.*?)\n```", re.DOTALL)
_RETURN_CODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")


class MiniSweAgentParser(DocumentParser):
    name = NAME

    def parse(self, document: Node) -> ParsedOutput:
        info = _check_trajectory(document)
        messages: list[Message] = []
        open_call: str | None = None  # the bash call awaiting its observation
        token_in = token_out = 0
        counted = False
        for index, node in enumerate(document.get("messages").items()):
            role = node.get("role").text()
            usage = node.path("extra", "response", "usage")
            if usage.value is not None:
                counted = True
                token_in += usage.get("prompt_tokens").opt_int() or 0
                token_out += usage.get("completion_tokens").opt_int() or 0
            if role in ("system", "developer"):
                messages.append(message("system", [_text(node.get("content"))], node))
            elif role == "assistant":
                blocks, open_call = _assistant(node, index)
                messages.append(message("assistant", blocks, node))
            elif role == "tool":
                result = {
                    "type": "tool_result",
                    "tool_call_id": node.get("tool_call_id").opt_text(),
                    "content": _text(node.get("content")),
                    "is_error": _failed(node),
                }
                messages.append(message("tool", [result], node))
            elif role == "user":
                text = _text(node.get("content"))
                if not text and node.path("extra").has("exit_status"):
                    continue  # the exit record, not a message
                if open_call is not None:
                    result = {
                        "type": "tool_result",
                        "tool_call_id": open_call,
                        "content": text,
                        "is_error": _failed(node),
                    }
                    messages.append(message("tool", [result], node))
                    open_call = None
                else:
                    messages.append(message("user", [text], node))
            else:
                node.get("role").fail(
                    f"unknown role {role!r} (expected system, user, assistant or tool)"
                )
        reason, error = _ending(info.get("exit_status").opt_text())
        model = info.path("config", "model", "model_name").opt_text()
        submission = info.get("submission").opt_text()
        recorded = stats(
            model=model.rpartition("/")[2] if model else None,
            cost=info.path("model_stats", "instance_cost").opt_number(),
            token_in=token_in if counted else None,
            token_out=token_out if counted else None,
            api_calls=info.path("model_stats", "api_calls").opt_int(),
        )
        transcript = Transcript(
            messages=messages,
            stats=recorded,
            final_answer=submission or None,
            termination_reason=reason,
        )
        return ParsedOutput(transcript, error)


def _assistant(node: Node, index: int) -> tuple[list[dict[str, Any]], str | None]:
    """The reply's text and its action as a bash call (the call's id, to pair the result)."""
    text = _text(node.get("content"))
    blocks: list[dict[str, Any]] = []
    thinking = node.get("reasoning_content").value
    if isinstance(thinking, str) and thinking:
        blocks.append({"type": "thinking", "thinking": thinking})
    if text:
        blocks.append({"type": "text", "text": text})
    if node.has("tool_calls"):
        for call in node.get("tool_calls").items():
            function = call.get("function")
            arguments = function.get("arguments").value
            try:
                tool_input = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError:
                tool_input = arguments
            blocks.append(
                {
                    "type": "tool_call",
                    "id": call.get("id").opt_text(),
                    "name": function.get("name").text(),
                    "input": tool_input or {},
                }
            )
        return blocks, None
    actions = node.path("extra", "actions").value
    commands = (
        [a.get("command") for a in actions if isinstance(a, dict) and "command" in a]
        if isinstance(actions, list)
        else _ACTION.findall(text)
    )
    call_id = None
    for number, command in enumerate(commands):
        call_id = f"action_{index}" + (f"_{number}" if number else "")
        blocks.append(
            {"type": "tool_call", "id": call_id, "name": "bash", "input": {"command": command}}
        )
    return blocks, call_id


def _failed(node: Node) -> bool:
    code = node.path("extra", "returncode").value
    if isinstance(code, int) and not isinstance(code, bool):
        return code != 0
    match = _RETURN_CODE.search(_text(node.get("content")))
    return bool(match and int(match.group(1)) != 0)


def _text(node: Node) -> str:
    if node.value is None:
        return ""
    if isinstance(node.value, str):
        return node.value
    return "\n".join(
        part.get("text").opt_text() or ""
        for part in node.items()
        if part.get("type").value == "text"
    )


def _check_trajectory(document: Node) -> Node:
    """The trajectory's `info`, once the document shows it is one."""
    document.obj()
    fmt = document.get("trajectory_format").opt_text()
    info = document.get("info")
    if not (fmt or "").startswith("mini-swe-agent") and not (
        info.has("exit_status") or info.has("mini_version")
    ):
        document.fail(
            "expected a mini-swe-agent trajectory (`trajectory_format`, `info` with "
            "`exit_status`, and `messages`)"
        )
    return info


def _ending(exit_status: str | None) -> tuple[TerminationReason | None, str | None]:
    """How the run ended, and its error, from the agent's exit status."""
    if exit_status == "Submitted":
        return "completed", None
    if exit_status == "LimitsExceeded":
        return "max_steps", None
    if exit_status:
        return "error", f"mini-swe-agent exited with {exit_status}"
    return None, None
