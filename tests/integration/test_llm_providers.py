"""The provider clients over the real anthropic and openai SDKs, against the loopback fake:
wire formats, conversations with tools, retries, errors, credentials and concurrency."""

from __future__ import annotations

import asyncio
import gc
import itertools
import socket
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from infra.llm.chat import (
    ChatMessage,
    ChatRequest,
    MissingCredential,
    Provider,
    ProviderError,
    Text,
    Thinking,
    ToolCall,
    ToolOutput,
)
from infra.llm.providers import Providers, ProviderSettings, shared_providers
from infra.llm.retry import RetryPolicy
from infra.runners.toolbox import ToolSpec
from tests.eventually import eventually
from tests.fakes.provider import Call, FakeProvider, Reply, serving

MODELS: dict[Provider, str] = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}
SHELL = ToolSpec(
    "shell",
    "Run a command",
    {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    yield from serving()


def providers(
    fake: FakeProvider, *, retries: int = 5, concurrency: int = 100, timeout_s: float = 30
) -> Providers:
    settings = ProviderSettings(
        concurrency=concurrency,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=retries, base_delay_s=0.01, max_delay_s=0.05),
    )
    return Providers(settings, environ=fake.env())


def chat(fake: FakeProvider, provider: Provider, request: ChatRequest, **options: Any) -> Any:
    async def go() -> Any:
        clients = providers(fake, **options)
        try:
            return await clients.client(provider).chat(request)
        finally:
            await clients.aclose()

    return asyncio.run(go())


def hello(provider: Provider) -> ChatRequest:
    return ChatRequest(model=MODELS[provider], messages=[ChatMessage.user("Hello")])


def test_the_real_sdks_parse_the_fakes_replies(fake: FakeProvider) -> None:
    fake.script(
        Reply(
            text="Let me look.", thinking="Check first.", calls=(Call("shell", {"command": "ls"}),)
        ),
        Reply(text="Done.", thinking="All good.", usage=(120, 7)),
        Reply.error(401, "invalid x-api-key"),
        Reply.rate_limited(retry_after=3),
    )

    async def go() -> None:
        claude = anthropic.AsyncAnthropic(api_key="k", base_url=fake.anthropic_url, max_retries=0)
        gpt = openai.AsyncOpenAI(api_key="k", base_url=fake.openai_url, max_retries=0)
        message = await claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"name": "shell", "description": "d", "input_schema": {"type": "object"}}],
        )
        assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
        assert message.stop_reason == "tool_use"
        assert message.content[2].input == {"command": "ls"}  # type: ignore[union-attr]
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
        completion = await gpt.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
        choice = completion.choices[0]
        assert (choice.message.content, choice.finish_reason) == ("Done.", "stop")
        assert completion.usage is not None
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (120, 7)
        with pytest.raises(anthropic.AuthenticationError) as denied:
            await claude.messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        assert denied.value.body == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        }
        with pytest.raises(openai.RateLimitError) as limited:
            await gpt.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}]
            )
        assert limited.value.response.headers["retry-after"] == "3"
        assert limited.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        await claude.close()
        await gpt.close()

    asyncio.run(go())
    assert [r.api for r in fake.requests] == ["anthropic", "openai", "anthropic", "openai"]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_conversation_with_tools_round_trips(fake: FakeProvider, provider: Provider) -> None:
    fake.script(
        Reply.tool("shell", {"command": "pip install acme"}, text="Installing.", thinking="Hm."),
        Reply.say("Installed."),
    )
    request = ChatRequest(
        model=MODELS[provider],
        system="You are a developer.",
        messages=[ChatMessage.user("Install acme")],
        tools=[SHELL],
        max_tokens=300,
    )

    async def go() -> tuple[Any, Any]:
        clients = providers(fake)
        client = clients.client(provider)
        first = await client.chat(request)
        (call,) = first.tool_calls
        results = ChatMessage("tool", (ToolOutput(call.id, "Successfully installed acme-2.1"),))
        follow_up = ChatRequest(
            model=request.model,
            system=request.system,
            messages=[*request.messages, first.as_message(), results],
            tools=[SHELL],
        )
        second = await client.chat(follow_up)
        await clients.aclose()
        return first, second

    first, second = asyncio.run(go())
    assert first.stop == "tool_use"
    assert first.text == "Installing."
    assert first.tool_calls[0].name == "shell"
    assert first.tool_calls[0].input == {"command": "pip install acme"}
    assert isinstance(first.content[0], Thinking) and first.content[0].thinking == "Hm."
    assert first.usage.token_in > 0 and first.usage.token_out > 0
    assert second.stop == "end_turn"
    assert second.content == (Text("Installed."),)
    sent = fake.requests
    assert sent[0].system == "You are a developer."
    assert sent[0].tool_names == ["shell"]
    assert sent[0].last_user_text == "Install acme"
    # The fake checks the conversation as the real API would: the tool call got its result.
    assert sent[1].tool_results == ["Successfully installed acme-2.1"]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_rate_limit_storm_is_waited_out_as_the_provider_asks(
    fake: FakeProvider, provider: Provider
) -> None:
    storm = [Reply.rate_limited(retry_after_ms=200) for _ in range(4)]
    fake.script(*storm, Reply.say("Finally."))
    response = chat(fake, provider, hello(provider))
    assert response.text == "Finally."
    times = [r.at for r in fake.requests]
    assert len(times) == 5
    # The backoff of this policy is ~0.01 s: only honouring retry-after-ms waits this long.
    assert all(later - earlier >= 0.19 for earlier, later in itertools.pairwise(times))


def test_a_retry_after_in_seconds_is_honoured_too(fake: FakeProvider) -> None:
    fake.script(Reply.rate_limited(retry_after=1), Reply.say("ok"))
    assert chat(fake, "anthropic", hello("anthropic")).text == "ok"
    first, second = fake.requests
    assert second.at - first.at >= 0.99


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("fault", [Reply.server_error(), Reply.overloaded(), Reply.error(408)])
def test_a_server_error_is_retried(fake: FakeProvider, provider: Provider, fault: Reply) -> None:
    fake.script(fault, Reply.say("ok"))
    assert chat(fake, provider, hello(provider)).text == "ok"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_provider_that_keeps_failing_gives_its_own_message(
    fake: FakeProvider, provider: Provider
) -> None:
    fake.script(Reply.server_error(), repeat_last=True)
    with pytest.raises(ProviderError) as failed:
        chat(fake, provider, hello(provider), retries=2)
    message = str(failed.value)
    assert message.startswith(f"{provider} API error 500: Internal server error (fake provider)")
    assert message.endswith("(gave up after 3 attempts)")
    assert failed.value.status == 500
    assert len(fake.requests) == 3


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_bad_request_is_not_retried(fake: FakeProvider, provider: Provider) -> None:
    fake.script(Reply.error(400, "max_tokens: too large"))
    with pytest.raises(ProviderError, match=r"API error 400: max_tokens: too large"):
        chat(fake, provider, hello(provider))
    assert len(fake.requests) == 1


def test_a_provider_that_never_answers_times_out_after_retries(fake: FakeProvider) -> None:
    fake.script(Reply.never(), repeat_last=True)
    with pytest.raises(ProviderError, match=r"did not answer in time \(gave up after 2 attempts\)"):
        chat(fake, "openai", hello("openai"), retries=1, timeout_s=0.3)
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("provider", "variable"), [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")]
)
def test_a_missing_key_names_its_variable(provider: Provider, variable: str) -> None:
    clients = Providers(ProviderSettings(), environ={})
    with pytest.raises(MissingCredential, match=f"^{variable} is not set"):
        clients.client(provider)


def test_requests_in_flight_are_bounded_per_provider() -> None:
    with FakeProvider(latency_s=0.05) as fake:
        fake.script(Reply.say("ok"), repeat_last=True)

        async def go() -> None:
            clients = providers(fake, concurrency=3)
            client = clients.client("anthropic")
            await asyncio.gather(*(client.chat(hello("anthropic")) for _ in range(12)))
            await clients.aclose()

        asyncio.run(go())
        assert len(fake.requests) == 12
        assert fake.max_in_flight == 3


def test_a_loops_shared_clients_are_closed_when_the_loop_ends(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Reply.say("ok"), repeat_last=True)
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)

    async def go() -> Providers:
        shared = shared_providers()
        assert shared_providers() is shared
        for provider in MODELS:
            await shared.client(provider).chat(hello(provider))
        return shared

    first = asyncio.run(go())
    assert wait_until_closed(fake) == []
    # An unclosed aiohttp session would warn (an error here) and log when collected.
    gc.collect()
    assert "Unclosed" not in caplog.text
    assert asyncio.run(go()) is not first  # a new loop gets clients of its own
    assert wait_until_closed(fake) == []
    assert len(fake.requests) == 4


def wait_until_closed(fake: FakeProvider) -> list[socket.socket]:
    """The connections still open once clients had time to close theirs (the fake would keep
    them for a minute)."""
    eventually(
        lambda: not fake.open_connections(), what="the clients closed", timeout=10, interval=0.01
    )
    return fake.open_connections()


def test_the_fakes_connections_send_responses_without_waiting_for_acks(
    fake: FakeProvider,
) -> None:
    fake.script(Reply.say("ok"), repeat_last=True)

    async def go() -> list[int]:
        clients = providers(fake)
        client = clients.client("anthropic")
        for _ in range(3):  # kept alive: one connection
            await client.chat(hello("anthropic"))
        nodelay = [
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in fake.open_connections()
        ]
        await clients.aclose()
        return nodelay

    assert asyncio.run(go()) == [1]


def test_the_agents_base_url_wins_over_the_environment(fake: FakeProvider) -> None:
    fake.script(Reply.say("from the agent's server"))
    env = {
        **fake.env(),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # nothing listens there
        "TPC_PROVIDER_BASE_URLS": fake.openai_url,  # the operator lets its key go to the agent's
    }

    async def go() -> str:
        clients = Providers(ProviderSettings(), environ=env)
        response = await clients.client("openai", fake.openai_url).chat(hello("openai"))
        await clients.aclose()
        return response.text

    assert asyncio.run(go()) == "from the agent's server"


def test_thinking_and_tool_calls_are_sent_back_as_anthropic_expects(fake: FakeProvider) -> None:
    fake.script(Reply.say("ok"))
    history = [
        ChatMessage.user("Go"),
        ChatMessage(
            "assistant",
            (Thinking("plan", signature="sig-1"), ToolCall("t1", "shell", {"command": "ls"})),
        ),
        ChatMessage("tool", (ToolOutput("t1", "", is_error=True),)),
        ChatMessage.user("And?"),
    ]
    chat(fake, "anthropic", ChatRequest(model=MODELS["anthropic"], messages=history, tools=[SHELL]))
    (sent,) = fake.requests
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Go"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "plan", "signature": "sig-1"},
                {"type": "tool_use", "id": "t1", "name": "shell", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": "(no output)",
                    "is_error": True,
                },
                {"type": "text", "text": "And?"},
            ],
        },
    ]


def test_the_fake_rejects_what_the_real_apis_reject(fake: FakeProvider) -> None:
    fake.script(Reply.say("never sent"), repeat_last=True)
    dangling = [
        ChatMessage.user("Go"),
        ChatMessage("assistant", (ToolCall("t1", "shell", {"command": "ls"}),)),
        ChatMessage.user("No result for t1"),
    ]
    for provider in ("anthropic", "openai"):
        with pytest.raises(ProviderError, match=r"API error 400: .*tool") as rejected:
            chat(fake, provider, ChatRequest(model=MODELS[provider], messages=dangling))
        assert "t1" in str(rejected.value)
