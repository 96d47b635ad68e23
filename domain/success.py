"""Task success (SPEC §6.1): whether a finished run passed, from its transcript and criteria."""

from __future__ import annotations

from typing import Any

from domain.signals.matching import compile_regex
from domain.sources import final_answer, source_text
from domain.transcripts import Transcript

# Criteria that need a workspace or a judge model; agents without them cannot satisfy them.
NEEDS_AGENT_SUPPORT = ("command", "judge")


class CriterionUnavailable(Exception):
    """A criterion this agent kind cannot evaluate (e.g. `command` without a workspace)."""


def judge_status(
    transcript: Transcript, termination_reason: str | None, success: dict[str, Any] | None
) -> str:
    """`passed` when every criterion holds, else `failed`. Without criteria a run passes when it
    terminated `completed`."""
    if not success or not any(success.get(k) for k in success):
        return "passed" if termination_reason == "completed" else "failed"
    for name in NEEDS_AGENT_SUPPORT:
        if success.get(name):
            raise CriterionUnavailable(
                f"success criterion {name!r} needs an agent with a workspace or a judge "
                "(llm or command agents); this agent cannot evaluate it"
            )
    if termination_reason not in (None, "completed"):
        return "failed"
    wanted = success.get("final_answer_regex")
    if wanted and compile_regex(wanted).search(final_answer(transcript).encode()) is None:
        return "failed"
    excluded = success.get("transcript_excludes_regex")
    if excluded and compile_regex(excluded).search(source_text(transcript, "any").encode()):
        return "failed"
    return "passed"
