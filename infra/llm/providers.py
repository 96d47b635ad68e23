"""Provider clients: which provider serves a model, where its key and base URL come from, and one
concurrency limit per provider shared by everything that calls it in this process.

Keys: `ANTHROPIC_API_KEY`, `OPENAI_API_KEY` (the operator's), or an llm agent's own `api_key`
(a product secret). Base URLs: an `llm` agent's `base_url`, else `ANTHROPIC_BASE_URL` /
`OPENAI_BASE_URL`, else the provider's default; the operator's key goes only where
`infra/llm/key_policy.py` allows. Tuning:
`TPC_PROVIDER_CONCURRENCY` (requests in flight per provider, default 100),
`TPC_PROVIDER_MAX_RETRIES` (default 5), `TPC_PROVIDER_TIMEOUT_S` (per request, default 300).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from infra.llm.anthropic_chat import AnthropicChat
from infra.llm.chat import ChatRequest, ChatResponse, MissingCredential, Provider
from infra.llm.key_policy import KEY_VARS, URL_VARS, ProviderKeyPolicy
from infra.llm.openai_chat import OpenAIChat
from infra.llm.retry import RetryPolicy, with_retries


def provider_for_model(model: str) -> Provider | None:
    """The provider of a model by its name (judges and simulated users name only a model)."""
    if model.startswith("claude-"):
        return "anthropic"
    if model.startswith("gpt-"):
        return "openai"
    return None


class InvalidProviderSetting(ValueError):
    """A TPC_PROVIDER_* variable that is not a usable number."""


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    concurrency: int = 100
    timeout_s: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        env = os.environ if environ is None else environ
        return cls(
            concurrency=int(_number(env, "TPC_PROVIDER_CONCURRENCY", 100, minimum=1)),
            timeout_s=_number(env, "TPC_PROVIDER_TIMEOUT_S", 300.0, minimum=0.001),
            retry=RetryPolicy(
                max_retries=int(_number(env, "TPC_PROVIDER_MAX_RETRIES", 5, minimum=0))
            ),
        )


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum or (isinstance(default, int) and not value.is_integer()):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise InvalidProviderSetting(f"{name} must be {kind} >= {minimum:g}, got {raw!r}")
    return value


class _Sender(Protocol):
    provider: str

    async def send(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...


class ProviderClient:
    """A `ChatClient`: one SDK client behind the provider's concurrency limit, with retries."""

    def __init__(
        self, provider: Provider, sender: _Sender, slots: asyncio.Semaphore, retry: RetryPolicy
    ) -> None:
        self._provider: Provider = provider
        self._sender = sender
        self._slots = slots
        self._retry = retry

    @property
    def provider(self) -> Provider:
        return self._provider

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await with_retries(
            self._provider, lambda: self._sender.send(request), self._retry, self._slots
        )

    async def aclose(self) -> None:
        await self._sender.aclose()


class Providers:
    """The provider clients of one event loop, created on first use (a server without keys
    starts fine; the first call that needs a missing key fails with `MissingCredential`)."""

    def __init__(
        self, settings: ProviderSettings | None = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self._environ = environ
        self.settings = settings or ProviderSettings.from_env(environ)
        self.key_policy = ProviderKeyPolicy.from_env(environ)
        self._slots: dict[Provider, asyncio.Semaphore] = {}
        self._clients: dict[tuple[Provider, str | None, str | None], ProviderClient] = {}

    def client(
        self, provider: Provider, base_url: str | None = None, api_key: str | None = None
    ) -> ProviderClient:
        """The client for `base_url` (else the operator's URL or the provider's default) with
        `api_key` (a product's own key), else the server's key: only where the operator allows
        it (`KeyNotAllowed` otherwise, before anything is sent)."""
        env = os.environ if self._environ is None else self._environ
        if api_key is None:
            self.key_policy.require(provider, base_url)
        url = base_url or env.get(URL_VARS[provider]) or None
        key = (provider, url, api_key)
        if key not in self._clients:
            if api_key is None:
                api_key = env.get(KEY_VARS[provider], "").strip()
            if not api_key:
                raise MissingCredential(
                    provider,
                    f"{KEY_VARS[provider]} is not set: calls to {provider} models need it in the "
                    "environment of the tpc server or worker",
                )
            timeout = self.settings.timeout_s
            sender: _Sender = (
                AnthropicChat(api_key, url, timeout)
                if provider == "anthropic"
                else OpenAIChat(api_key, url, timeout)
            )
            slots = self._slots.setdefault(provider, asyncio.Semaphore(self.settings.concurrency))
            self._clients[key] = ProviderClient(provider, sender, slots, self.settings.retry)
        return self._clients[key]

    def for_model(self, model: str) -> ProviderClient:
        """The client for a model named without a provider (judges, simulated users)."""
        provider = provider_for_model(model)
        if provider is None:
            raise ValueError(
                f"no provider for model {model!r}: claude-* models use anthropic, gpt-* openai"
            )
        return self.client(provider)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


# Until the loop shuts down (a loop closed without `shutdown_asyncgens()` keeps its entry).
_SHARED: dict[asyncio.AbstractEventLoop, tuple[Providers, AsyncGenerator[None, None]]] = {}


def shared_providers() -> Providers:
    """This event loop's providers, shared by the agent runner, the judges and the simulated
    users, so the concurrency limit holds for the whole process (SDK clients are bound to the
    loop that created them, hence one set per loop). They are closed when the loop shuts down
    (`asyncio.run`, uvicorn)."""
    loop = asyncio.get_running_loop()
    if loop not in _SHARED:
        providers = Providers()
        closer = _closed_at_shutdown(loop, providers)
        # Started, it is registered with the running loop and parks at its `yield`.
        with contextlib.suppress(StopIteration):
            closer.asend(None).send(None)
        _SHARED[loop] = (providers, closer)
    return _SHARED[loop][0]


async def _closed_at_shutdown(
    loop: asyncio.AbstractEventLoop, providers: Providers
) -> AsyncGenerator[None, None]:
    """Closes `providers` when the loop's `shutdown_asyncgens()` closes it: after the loop's
    tasks have ended. Unclosed, aiohttp's sessions leak sockets and log errors."""
    try:
        yield
    finally:
        del _SHARED[loop]
        await providers.aclose()
