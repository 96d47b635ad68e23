"""The judge port (`domain.signals.judging`) answered by a provider's model.

Each question goes to its model as one request with a forced tool, `record_verdict`, whose input
schema is the answer (a boolean, or one of the categories) and an excerpt of the text the answer
rests on, which becomes the value's evidence. Identical questions (same model, prompt, answer
kind and text: `JudgeRequest.cache_key`) are asked once per process, also when concurrent runs
ask them at the same moment. A failure never invents a value: an unsupported model, a missing
key or a provider that fails after retries comes back as a verdict with an `error`.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.signals.config import JUDGE_MODELS
from domain.signals.judging import JudgeKey, JudgeRequest, JudgeVerdict
from domain.signals.matching import SNIPPET_CHARS
from domain.stats import ModelPrice
from infra.llm.chat import ChatMessage, ChatRequest, ChatResponse, Meter, ProviderError, Usage
from infra.llm.prices import MODEL_PRICES
from infra.llm.providers import Providers, shared_providers
from infra.runners.toolbox import ToolSpec

VERDICT_TOOL = "record_verdict"
# Long transcripts are cut in the middle to fit any supported model's context (~60k tokens).
MAX_TEXT_CHARS = 240_000
SYSTEM = (
    "You evaluate transcripts of AI agents working with a developer product. Read the text, "
    f"answer the question about it, and record your answer with the {VERDICT_TOOL} tool. "
    "Base the answer only on the text. As evidence, copy the passage your answer rests on, "
    f"verbatim and at most {SNIPPET_CHARS} characters, into `excerpt` (empty when nothing in "
    "the text bears on the question)."
)


@dataclass(frozen=True, slots=True)
class JudgeAnswers:
    """A batch of verdicts and what asking cost (cached answers cost nothing again)."""

    verdicts: dict[JudgeKey, JudgeVerdict]
    usage: Usage
    cost: float


class LlmJudge:
    """Answers `JudgeRequest`s with the models of `JUDGE_MODELS` (claude-* on Anthropic, gpt-*
    on OpenAI). Provider clients are created on first use, so a judge costs nothing to build
    and a server without keys starts fine."""

    def __init__(
        self,
        providers: Providers | None = None,
        *,
        prices: Mapping[str, ModelPrice] = MODEL_PRICES,
        cache_size: int = 20_000,
        max_tokens: int = 1024,
    ) -> None:
        self._providers = providers
        self._prices = prices
        self._cache_size = cache_size
        self._max_tokens = max_tokens
        self._answered: OrderedDict[str, JudgeVerdict] = OrderedDict()
        self._asking: dict[str, asyncio.Future[JudgeVerdict]] = {}

    async def judge(self, requests: Sequence[JudgeRequest]) -> Mapping[JudgeKey, JudgeVerdict]:
        return (await self.judge_metered(requests)).verdicts

    async def judge_metered(self, requests: Sequence[JudgeRequest]) -> JudgeAnswers:
        """Every verdict, and the tokens and cost of the calls made for this batch."""
        meter = Meter(self._prices)
        verdicts = await asyncio.gather(*(self._verdict(r, meter) for r in requests))
        answers = {
            request.key: verdict for request, verdict in zip(requests, verdicts, strict=True)
        }
        return JudgeAnswers(answers, meter.usage, meter.cost)

    async def _verdict(self, request: JudgeRequest, meter: Meter) -> JudgeVerdict:
        if request.model not in JUDGE_MODELS:
            return JudgeVerdict(
                None,
                error=f"unsupported judge model {request.model!r} "
                f"(supported: {', '.join(JUDGE_MODELS)})",
            )
        key = request.cache_key
        while True:
            if key in self._answered:
                self._answered.move_to_end(key)
                return self._answered[key]
            pending = self._asking.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                # The asker was cancelled, not us: ask ourselves. Our own cancel goes through.
                current = asyncio.current_task()
                if not pending.cancelled() or (current is not None and current.cancelling()):
                    raise
        future: asyncio.Future[JudgeVerdict] = asyncio.get_running_loop().create_future()
        self._asking[key] = future
        try:
            verdict = await self._ask(request, meter)
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._asking[key]
        future.set_result(verdict)
        if verdict.error is None:  # a failure may be transient: the next run asks again
            self._answered[key] = verdict
            while len(self._answered) > self._cache_size:
                self._answered.popitem(last=False)
        return verdict

    async def _ask(self, request: JudgeRequest, meter: Meter) -> JudgeVerdict:
        try:
            providers = self._providers or shared_providers()
            client = providers.for_model(request.model)
            response = await client.chat(
                ChatRequest(
                    model=request.model,
                    system=SYSTEM,
                    messages=[ChatMessage.user(question(request))],
                    tools=[verdict_tool(request)],
                    force_tool=VERDICT_TOOL,
                    max_tokens=self._max_tokens,
                )
            )
        except (ProviderError, ValueError) as error:
            return JudgeVerdict(None, error=str(error))
        meter.add(request.model, response.usage)
        return read_verdict(request, response)


def question(request: JudgeRequest) -> str:
    if request.answer == "boolean":
        wanted = "Answer true or false."
    else:
        wanted = f"Answer with exactly one of: {', '.join(request.categories)}."
    return f"{request.prompt.strip()}\n\n{wanted}\n\n<text>\n{_fit(request.text)}\n</text>"


def _fit(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    half = MAX_TEXT_CHARS // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[… {omitted} characters omitted …]\n{text[-half:]}"


def verdict_tool(request: JudgeRequest) -> ToolSpec:
    answer: dict[str, Any] = (
        {"type": "boolean"}
        if request.answer == "boolean"
        else {"type": "string", "enum": list(request.categories)}
    )
    return ToolSpec(
        name=VERDICT_TOOL,
        description="Record the answer to the question and the excerpt it rests on.",
        input_schema={
            "type": "object",
            "properties": {
                "answer": {**answer, "description": "The answer to the question."},
                "excerpt": {
                    "type": "string",
                    "description": "The passage of the text the answer rests on, verbatim.",
                },
            },
            "required": ["answer", "excerpt"],
            "additionalProperties": False,
        },
    )


def read_verdict(request: JudgeRequest, response: ChatResponse) -> JudgeVerdict:
    """The verdict in the model's tool call (or, failing that, JSON in its text)."""
    data: Any = next(
        (call.input for call in response.tool_calls if call.name == VERDICT_TOOL), None
    )
    if data is None:
        try:
            data = json.loads(response.text)
        except ValueError:
            data = None
    if not isinstance(data, dict) or "answer" not in data:
        said = response.text.strip()[:200] or "nothing"
        return JudgeVerdict(None, error=f"the judge gave no structured answer (it said {said!r})")
    excerpt = data.get("excerpt")
    excerpt = excerpt.strip()[:SNIPPET_CHARS] if isinstance(excerpt, str) else ""
    value = _answer(request, data["answer"])
    if value is None:
        expected = "true or false" if request.answer == "boolean" else ", ".join(request.categories)
        return JudgeVerdict(
            None, excerpt, error=f"the judge answered {data['answer']!r}, not {expected}"
        )
    return JudgeVerdict(value, excerpt)


def _answer(request: JudgeRequest, raw: Any) -> bool | str | None:
    if request.answer == "boolean":
        if isinstance(raw, bool):
            return raw
        words = {"true": True, "yes": True, "false": False, "no": False}
        return words.get(raw.strip().lower()) if isinstance(raw, str) else None
    if not isinstance(raw, str):
        return None
    if raw in request.categories:
        return raw
    folded = {category.lower(): category for category in request.categories}
    return folded.get(raw.strip().lower())
