"""The `command` agent (docs/spec.md §6): an external agent CLI run in a fresh per-run workspace.

The command (an argument list, or a string split like a shell would, never run through one)
gets the task's prompt in place of `{prompt}`, or on stdin when no argument asks for it. Its
output (stdout, or `output_file` in the workspace) is parsed with the environment's
`transcript_format`; line formats are parsed as they stream, each message reported to the
run's live log. The task's `command` success criterion is then checked in the same workspace.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from domain.definitions import CommandAgent
from domain.secrets import SecretUnavailable, expand
from domain.transcript_formats import (
    OutputParser,
    ParsedOutput,
    TranscriptFormatError,
    parser_for,
)
from domain.transcripts import Message, TextBlock, Transcript
from domain.vocabulary import DEFAULT_TIMEOUT_S, TerminationReason
from infra.runners.base import RunnerError, RunOutcome, RunProgress, RunRequest
from infra.runners.workspace import CommandResult, Workspace

CHECK_TIMEOUT_S = 300.0  # the success `command`; the run's own time limit still applies
MAX_OUTPUT_BYTES = 200_000_000  # an agent printing without end would exhaust the server
STDERR_TAIL = 2_000


class CommandRunner:
    """Runs `command` agents; see the module docstring and docs/environments.md."""

    async def run(self, request: RunRequest) -> RunOutcome:
        agent = CommandAgent.model_validate(request.environment["agent"])
        prompt = str(request.task["prompt"])
        argv, stdin = command_argv(agent.command, prompt)
        env = resolve_env(agent.env, request.secrets)
        output_file = _relative(agent.output_file) if agent.output_file else None
        limit = float(request.environment.get("limits", {}).get("timeout_s", DEFAULT_TIMEOUT_S))
        stream = _Stream(parser_for(agent.transcript_format, prompt), request.progress)
        started = datetime.now(UTC)
        async with Workspace.create(agent.workspace, request.run_id) as workspace:
            # Refused before the agent starts when the environment asks for too much.
            network = workspace.settings.network_for(agent.network)
            result = await workspace.run(
                argv,
                timeout_s=limit,
                env=env,
                network=network,
                stdin=stdin,
                on_stdout_line=None if output_file else stream.line,
            )
            ended = datetime.now(UTC)
            if result.timed_out:
                raise TimeoutError(f"the agent ran past the time limit of {limit:g} s")
            if output_file is not None:
                await _read_output_file(workspace, output_file, stream, result)
            parsed = stream.finish(result)
            error = parsed.error
            checks: dict[str, bool] = {}
            criterion = (request.task.get("success") or {}).get("command")
            if criterion and error is None:
                checks["command"] = await workspace.check(criterion, timeout_s=CHECK_TIMEOUT_S)
        transcript = _complete(parsed, request, agent, result, started, ended)
        if error is not None:
            note = Message(role="system", content=[TextBlock(text=f"[agent error] {error}")])
            transcript = transcript.model_copy(update={"messages": [*transcript.messages, note]})
            stream.report([note])
        reason = transcript.termination_reason or "completed"
        return RunOutcome(
            transcript=transcript,
            status="errored" if error is not None else None,
            termination_reason=reason,
            checks=checks,
        )


def command_argv(command: str | list[str], prompt: str) -> tuple[list[str], bytes | None]:
    """The argument list with `{prompt}` substituted, and the stdin to give: the prompt when
    no argument contains `{prompt}`."""
    try:
        parts = shlex.split(command) if isinstance(command, str) else list(command)
    except ValueError as error:
        raise RunnerError(f"agent command {command!r} cannot be split: {error}") from None
    if not parts:
        raise RunnerError("the agent command is empty")
    wants_prompt = any("{prompt}" in part for part in parts)
    argv = [part.replace("{prompt}", prompt) for part in parts]
    return argv, None if wants_prompt else prompt.encode()


def resolve_env(env: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """The agent's env with `${NAME}` replaced from the product's secrets (`$${` is a literal
    `${`), never from the server's environment: only what the environment names is passed.
    A secret the product does not have is an error, not an empty value."""
    try:
        return {key: expand(value, secrets, f"agent env {key}") for key, value in env.items()}
    except SecretUnavailable as error:
        raise RunnerError(str(error)) from None


class _Stream:
    """Feeds the agent's output to its parser and reports messages as they complete."""

    def __init__(self, parser: OutputParser, progress: RunProgress) -> None:
        self._parser = parser
        self._progress = progress
        self._reported = 0
        self._bytes = 0
        self._error: TranscriptFormatError | None = None

    def line(self, data: bytes) -> None:
        self._bytes += len(data) + 1
        if self._bytes > MAX_OUTPUT_BYTES:
            raise RunnerError(f"the agent's output exceeds {MAX_OUTPUT_BYTES} bytes")
        try:
            messages = self._parser.feed(data.decode("utf-8", errors="replace"))
        except TranscriptFormatError as error:
            # Raised from the output handler, this stops the command: its transcript is lost.
            raise RunnerError(f"the agent's output is not valid: {error}") from None
        self.report(messages)

    def report(self, messages: list[Message]) -> None:
        for message in messages:
            self._progress.message(message.model_dump(mode="json", exclude_none=True))
        self._reported += len(messages)

    def finish(self, result: CommandResult) -> ParsedOutput:
        try:
            parsed = self._parser.finish()
        except TranscriptFormatError as error:
            if result.exit_code != 0:
                raise RunnerError(_exit_message(result)) from None
            raise RunnerError(f"the agent's output is not valid: {error}") from None
        if result.exit_code != 0 and not any(
            m.role == "assistant" for m in parsed.transcript.messages
        ):
            raise RunnerError(_exit_message(result))
        self.report(parsed.transcript.messages[self._reported :])
        return parsed


def _exit_message(result: CommandResult) -> str:
    tail = result.stderr.decode("utf-8", errors="replace").strip()[-STDERR_TAIL:]
    code = result.exit_code
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited {code}"
    return f"the agent command {how} without a transcript" + (
        f"; stderr ends with:\n{tail}" if tail else " (and printed nothing on stderr)"
    )


async def _read_output_file(
    workspace: Workspace, output_file: PurePosixPath, stream: _Stream, result: CommandResult
) -> None:
    path = workspace.path / output_file
    if not path.is_file():
        if result.exit_code != 0:
            raise RunnerError(_exit_message(result))
        raise RunnerError(f"the agent did not write its transcript to {output_file}")
    data = await asyncio.to_thread(_read_inside, workspace.path, path, output_file)
    for line in data.split(b"\n"):
        stream.line(line)


def _read_inside(root: Path, path: Path, output_file: PurePosixPath) -> bytes:
    """The file's bytes, refusing a symlink that leads outside the workspace: the agent's user
    could otherwise have the server read (and show) a file only the server may read."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise RunnerError(f"output_file {output_file} leads outside the workspace (a symlink)")
    try:
        descriptor = os.open(path.resolve(), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise RunnerError(f"cannot read output_file {output_file}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


def _relative(output_file: str) -> PurePosixPath:
    path = PurePosixPath(output_file)
    if path.is_absolute() or ".." in path.parts:
        raise RunnerError(
            f"output_file {output_file!r} must be a path inside the workspace (relative, no '..')"
        )
    return path


def _complete(
    parsed: ParsedOutput,
    request: RunRequest,
    agent: CommandAgent,
    result: CommandResult,
    started: datetime,
    ended: datetime,
) -> Transcript:
    """The run's ids and times, what the agent definition knows (model), and a termination
    reason where the format gave none."""
    transcript = parsed.transcript
    stats = transcript.stats
    known: dict[str, Any] = {}
    if stats.model is None and agent.model is not None:
        known["model"] = agent.model
    if stats.duration is None:
        known["duration"] = (ended - started).total_seconds()
    reason: TerminationReason | None = transcript.termination_reason
    if parsed.error is not None:
        reason = "error"
    elif reason is None:
        reason = "completed" if result.exit_code == 0 else "error"
    limit = request.environment.get("limits", {}).get("max_cost_usd")
    cost = stats.cost
    if reason == "completed" and limit is not None and cost is not None and cost > limit:
        reason = "budget_exceeded"  # known only afterwards: an agent CLI is not stopped mid-run
    return transcript.model_copy(
        update={
            "task_id": request.task_id,
            "environment_id": request.environment_id,
            "started_at": transcript.started_at or started,
            "ended_at": transcript.ended_at or ended,
            "stats": stats.model_copy(update=known),
            "termination_reason": reason,
        }
    )
