"""Task success (docs/spec.md §6.1): whether a finished run passed, from its transcript and
criteria."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.signals.matching import compile_regex
from domain.sources import final_answer, source_text
from domain.transcripts import Transcript

# Criteria that need a workspace or a judge model; agents without them cannot satisfy them.
NEEDS_AGENT_SUPPORT = ("command", "judge")


class CriterionUnavailable(Exception):
    """A criterion this agent kind cannot evaluate (e.g. `command` without a workspace)."""


def judge_status(
    transcript: Transcript,
    termination_reason: str | None,
    success: dict[str, Any] | None,
    checks: Mapping[str, bool] | None = None,
) -> str:
    """`passed` when every criterion holds, else `failed`. Without criteria a run passes when it
    terminated `completed`. `checks` holds the outcome of criteria evaluated outside the
    transcript: `command` (by the runner, in the run's workspace) and `judge` (by a model)."""
    if not success or not any(success.get(k) for k in success):
        return "passed" if termination_reason == "completed" else "failed"
    checks = checks or {}
    for name in NEEDS_AGENT_SUPPORT:
        if success.get(name) and name not in checks:
            raise CriterionUnavailable(
                f"success criterion {name!r} was not evaluated: `command` needs an agent with a "
                "workspace (llm or command agents), `judge` a configured judge model"
            )
    if termination_reason not in (None, "completed"):
        return "failed"
    if not all(checks.get(name, True) for name in NEEDS_AGENT_SUPPORT if success.get(name)):
        return "failed"
    wanted = success.get("final_answer_regex")
    if wanted and compile_regex(wanted).search(final_answer(transcript).encode()) is None:
        return "failed"
    excluded = success.get("transcript_excludes_regex")
    if excluded and compile_regex(excluded).search(source_text(transcript, "any").encode()):
        return "failed"
    return "passed"
