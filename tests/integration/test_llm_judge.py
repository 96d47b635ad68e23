"""The judge port answered by models through the real SDKs, against the loopback fake:
structured answers with evidence, the cache, failures that never invent a value, and cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from domain.signals.extraction import Extractor
from domain.signals.judging import JudgeRequest, JudgeVerdict
from domain.signals.validation import validate_signal_config
from domain.stats import derive_stats
from domain.transcripts import transcript_from_object
from infra.llm.judge import VERDICT_TOOL, JudgeAnswers, LlmJudge
from infra.llm.prices import MODEL_PRICES
from infra.llm.providers import Providers, ProviderSettings
from infra.llm.retry import RetryPolicy
from tests.fakes.provider import FakeProvider, Recorded, Reply, forced, serving


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


def ask(
    fake: FakeProvider, *batches: list[JudgeRequest], env: dict[str, str] | None = None
) -> list[JudgeAnswers]:
    """Each batch through one judge, concurrently (as concurrent runs would ask)."""

    async def go() -> list[JudgeAnswers]:
        settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
        providers = Providers(settings, environ=fake.env() if env is None else env)
        judge = LlmJudge(providers)
        try:
            return list(await asyncio.gather(*(judge.judge_metered(b) for b in batches)))
        finally:
            await providers.aclose()

    return asyncio.run(go())


def polite(text: str = "Thanks! Here is the fix.", model: str = "claude-haiku-4-5") -> JudgeRequest:
    return JudgeRequest("polite", None, model, "Is the agent polite?", text, "boolean")


def mood(event: int, text: str, model: str = "gpt-4o-mini") -> JudgeRequest:
    return JudgeRequest(
        "mood", event, model, "How does the user feel?", text, "category", ("calm", "frustrated")
    )


def test_a_boolean_verdict_cites_its_evidence(fake: FakeProvider) -> None:
    fake.script(
        Reply.tool(VERDICT_TOOL, {"answer": True, "excerpt": "Thanks!"}, usage=(1000, 50)),
        when=forced(VERDICT_TOOL),
    )
    (answers,) = ask(fake, [polite()])
    assert answers.verdicts == {("polite", None): JudgeVerdict(True, "Thanks!")}
    assert (answers.usage.token_in, answers.usage.token_out) == (1000, 50)
    assert answers.cost == pytest.approx(MODEL_PRICES["claude-haiku-4-5"].cost(1000, 50))
    (sent,) = fake.requests
    assert sent.api == "anthropic" and sent.model == "claude-haiku-4-5"
    assert sent.forced_tool == VERDICT_TOOL
    schema = sent.body["tools"][0]["input_schema"]
    assert schema["properties"]["answer"]["type"] == "boolean"
    assert schema["required"] == ["answer", "excerpt"]
    assert "Is the agent polite?" in sent.last_user_text
    assert "Thanks! Here is the fix." in sent.last_user_text


def test_a_category_verdict_on_openai(fake: FakeProvider) -> None:
    def by_text(request: Recorded) -> Reply:
        answer = "Frustrated" if "again" in request.last_user_text else "calm"
        return Reply.tool(VERDICT_TOOL, {"answer": answer, "excerpt": request.last_user_text[-30:]})

    fake.respond(by_text, when=forced(VERDICT_TOOL))
    (answers,) = ask(fake, [mood(1, "It failed again!"), mood(3, "Looks good, thanks.")])
    assert answers.verdicts[("mood", 1)].value == "frustrated"  # the declared spelling
    assert answers.verdicts[("mood", 3)].value == "calm"
    assert "It failed again!" in answers.verdicts[("mood", 1)].excerpt
    sent = fake.requests_for("openai")
    assert len(sent) == 2
    function = sent[0].body["tools"][0]["function"]
    assert function["parameters"]["properties"]["answer"]["enum"] == ["calm", "frustrated"]
    assert sent[0].body["tool_choice"] == {"type": "function", "function": {"name": VERDICT_TOOL}}


def test_an_answer_outside_the_categories_is_an_error_not_a_value(fake: FakeProvider) -> None:
    fake.script(Reply.tool(VERDICT_TOOL, {"answer": "angry", "excerpt": "!!"}))
    (answers,) = ask(fake, [mood(0, "!!")])
    verdict = answers.verdicts[("mood", 0)]
    assert verdict.value is None
    assert verdict.error == "the judge answered 'angry', not calm, frustrated"


def test_a_json_answer_in_text_is_accepted_and_prose_is_not(fake: FakeProvider) -> None:
    fake.script(
        Reply.say(json.dumps({"answer": "false", "excerpt": "rude"})),
        Reply.say("I think it is polite."),
    )
    (answers,) = ask(fake, [polite("a")])
    assert answers.verdicts[("polite", None)] == JudgeVerdict(False, "rude")
    (answers,) = ask(fake, [polite("b")])
    assert answers.verdicts[("polite", None)].error == (
        "the judge gave no structured answer (it said 'I think it is polite.')"
    )


def test_identical_questions_are_asked_once_even_from_concurrent_runs() -> None:
    with FakeProvider(latency_s=0.2) as fake:
        fake.script(
            Reply.tool(VERDICT_TOOL, {"answer": True, "excerpt": "Thanks!"}), repeat_last=True
        )
        first, second, third = ask(fake, [polite(), polite()], [polite()], [polite("Other text")])
        assert len(fake.requests) == 2  # one per distinct text
        verdict = JudgeVerdict(True, "Thanks!")
        assert first.verdicts[("polite", None)] == second.verdicts[("polite", None)] == verdict
        # Whoever asked pays; the runs that shared the answer did not ask again.
        assert sorted([first.cost > 0, second.cost > 0]) == [False, True]
        assert third.cost > 0


def test_an_unsupported_model_fails_per_run_without_a_call(fake: FakeProvider) -> None:
    (answers,) = ask(fake, [polite(model="claude-2")])
    error = answers.verdicts[("polite", None)].error
    assert error is not None and error.startswith("unsupported judge model 'claude-2' (supported:")
    assert fake.requests == []


def test_a_failing_provider_gives_an_error_verdict_and_is_asked_again_later(
    fake: FakeProvider,
) -> None:
    fake.script(Reply.error(529, "Overloaded"), Reply.error(529, "Overloaded"))
    fake.script(Reply.tool(VERDICT_TOOL, {"answer": False, "excerpt": ""}))

    async def go() -> tuple[JudgeAnswers, JudgeAnswers]:
        settings = ProviderSettings(retry=RetryPolicy(max_retries=1, base_delay_s=0.01))
        providers = Providers(settings, environ=fake.env())
        judge = LlmJudge(providers)
        failed = await judge.judge_metered([polite()])
        later = await judge.judge_metered([polite()])
        await providers.aclose()
        return failed, later

    failed, later = asyncio.run(go())
    verdict = failed.verdicts[("polite", None)]
    assert verdict.value is None
    assert verdict.error == (
        "anthropic API error 529: Overloaded (overloaded_error) (gave up after 2 attempts)"
    )
    assert failed.cost == 0
    assert later.verdicts[("polite", None)] == JudgeVerdict(False, "")  # errors are not cached


def test_a_missing_key_is_an_error_verdict(fake: FakeProvider) -> None:
    fake.script(Reply.tool(VERDICT_TOOL, {"answer": "calm", "excerpt": "x"}))
    only_openai = {k: v for k, v in fake.env().items() if k.startswith("OPENAI_")}
    (answers,) = ask(fake, [polite(), mood(0, "x")], env=only_openai)
    assert answers.verdicts[("polite", None)].error == (
        "ANTHROPIC_API_KEY is not set: calls to anthropic models need it in the environment of "
        "the tpc server or worker"
    )
    assert answers.verdicts[("mood", 0)] == JudgeVerdict("calm", "x")  # other models still work
    assert [r.api for r in fake.requests] == ["openai"]


CONFIG: dict[str, Any] = {
    "version": 1,
    "signals": [
        {
            "id": "solved",
            "name": "Solved",
            "type": "boolean",
            "source": "finalAnswer",
            "extract": {"method": "llm", "prompt": "Did the agent solve the task?"},
        },
        {
            "id": "user-mood",
            "name": "User mood",
            "type": "category",
            "category_enums": ["calm", "frustrated"],
            "scope": "message",
            "target_role": "user",
            "fold": {"fn": "histogram"},
            "extract": {
                "method": "llm",
                "prompt": "How does the user feel?",
                "model": "gpt-4.1-nano",
            },
        },
    ],
    "aggregates": [],
}


def test_llm_signals_are_extracted_from_the_judges_verdicts(fake: FakeProvider) -> None:
    transcript = transcript_from_object(
        {
            "messages": [
                {"role": "user", "content": "Create a customer."},
                {"role": "assistant", "content": "Which plan?"},
                {"role": "user", "content": "I said it already, again!"},
                {"role": "assistant", "content": "Created customer cus_1."},
            ]
        }
    )

    def answer(request: Recorded) -> Reply:
        text = request.last_user_text
        if "solve" in text:
            return Reply.tool(VERDICT_TOOL, {"answer": True, "excerpt": "Created customer cus_1."})
        feeling = "frustrated" if "again" in text else "calm"
        return Reply.tool(VERDICT_TOOL, {"answer": feeling, "excerpt": feeling})

    fake.respond(answer)
    report = validate_signal_config(CONFIG)
    assert report.config is not None
    extractor = Extractor(report.config)
    (answers,) = ask(fake, extractor.judge_requests(transcript))
    values = extractor.extract(transcript, derive_stats(transcript), verdicts=answers.verdicts)
    assert values["solved"].to_json() == {
        "value": True,
        "evidence": [{"event": 3, "snippet": "Created customer cus_1."}],
    }
    assert values["user-mood"].value == {"calm": 1, "frustrated": 1}
    assert [e.event for e in values["user-mood"].evidence] == [0, 2]
    assert sorted(r.api for r in fake.requests) == ["anthropic", "openai", "openai"]
