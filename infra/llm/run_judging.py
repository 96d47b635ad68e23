"""What a finished run asks of a judge: the task's success `judge` criterion (docs/spec.md §6.1) and
the llm signals of the iteration's config (docs/spec.md §4.1), and what the answers cost.

Used by whatever executes runs (the in-process executor, the queue worker): it stays free of
their bookkeeping, and the domain stays free of I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from domain.signals.extraction import Extractor
from domain.signals.judging import Judge, JudgeKey, JudgeRequest, JudgeVerdict
from domain.sources import message_text
from domain.transcripts import Transcript
from infra.llm.chat import Usage
from infra.llm.judge import JudgeAnswers

log = logging.getLogger("tpc.judge")
SUCCESS_SIGNAL = "task-success"  # the key of the success judge's request (not a signal id)


@runtime_checkable
class MeteredJudge(Protocol):
    """A judge that also says what its answers cost (`infra.llm.judge.LlmJudge`)."""

    async def judge_metered(self, requests: Sequence[JudgeRequest]) -> JudgeAnswers: ...


@dataclass(slots=True)
class JudgeSpend:
    """The judge's tokens and cost for one run, recorded beside (never in) the agent's."""

    asked: bool = False
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0

    def add(self, answers: JudgeAnswers) -> None:
        self.asked = True
        self.usage = self.usage + answers.usage
        self.cost += answers.cost

    def stats(self) -> dict[str, Any]:
        """`judge_cost`, `judge_token_in`, `judge_token_out` for the run's stats (when asked)."""
        if not self.asked:
            return {}
        return {
            "judge_cost": self.cost,
            "judge_token_in": self.usage.token_in,
            "judge_token_out": self.usage.token_out,
        }


async def ask(
    judge: Judge, requests: Sequence[JudgeRequest], spend: JudgeSpend
) -> Mapping[JudgeKey, JudgeVerdict]:
    """The judge's verdicts; a judge that breaks gives every request an error verdict, so a
    run is always recorded (its llm values missing, with the reason)."""
    if not requests:
        return {}
    try:
        if isinstance(judge, MeteredJudge):
            answers = await judge.judge_metered(requests)
        else:
            answers = JudgeAnswers(dict(await judge.judge(requests)), Usage(), 0.0)
    except Exception as error:
        log.exception("the judge failed")
        failed = JudgeVerdict(None, error=f"the judge failed: {type(error).__name__}: {error}")
        return {request.key: failed for request in requests}
    spend.add(answers)
    return answers.verdicts


def success_request(transcript: Transcript, criterion: Mapping[str, Any]) -> JudgeRequest:
    """The task's `success.judge` as a boolean question over the whole transcript, each message
    labelled with its index and role so the judge can cite it."""
    text = "\n\n".join(
        f"[{index} {message.role}]\n{message_text(message)}"
        for index, message in enumerate(transcript.messages)
    )
    return JudgeRequest(
        signal_id=SUCCESS_SIGNAL,
        event=None,
        model=str(criterion.get("model", "")),
        prompt=str(criterion.get("prompt", "")),
        text=text,
        answer="boolean",
    )


async def judge_success(
    judge: Judge, transcript: Transcript, criterion: Mapping[str, Any], spend: JudgeSpend
) -> JudgeVerdict:
    """The success judge's verdict; an error verdict when it could not answer."""
    request = success_request(transcript, criterion)
    verdicts = await ask(judge, [request], spend)
    return verdicts.get(request.key) or JudgeVerdict(None, error="the judge gave no verdict")


async def judge_signals(
    judge: Judge, extractor: Extractor, transcript: Transcript, spend: JudgeSpend
) -> Mapping[JudgeKey, JudgeVerdict]:
    """The verdicts every llm signal of the config needs for this transcript."""
    return await ask(judge, extractor.judge_requests(transcript), spend)
