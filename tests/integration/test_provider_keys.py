"""Where the operator's provider keys go, with the real anthropic and openai SDKs against two
loopback fakes: the operator's own endpoint (`*_BASE_URL`) and a product's server. The server's
key reaches a product's `base_url` only when the operator listed it (`TPC_PROVIDER_BASE_URLS`);
otherwise the environment is refused when created, and the provider layer refuses before
anything is sent; a product's own key (`api_key: ${NAME}`, a product secret) is what arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from application.service import Service
from domain.errors import InvalidInput
from infra.llm.chat import ChatMessage, ChatRequest, Provider
from infra.llm.key_policy import KeyNotAllowed, ProviderKeyPolicy, endpoint
from infra.llm.providers import Providers, ProviderSettings
from infra.llm.retry import RetryPolicy
from infra.runners.base import RunnerError, RunOutcome, RunRequest
from infra.runners.llm import LlmRunner
from infra.settings import Settings, SettingsError
from tests.fakes.provider import TEST_KEY, FakeProvider, Recorded, Reply, serving

MODELS: dict[Provider, str] = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4.1-mini"}
PRODUCT_KEY = "the-products-own-key"


@pytest.fixture
def operator() -> Iterator[FakeProvider]:
    """The operator's endpoint: `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL` point here."""
    yield from serving()


@pytest.fixture
def tenant() -> Iterator[FakeProvider]:
    """A server a product names as its environment's `base_url`."""
    yield from serving()


def url_of(fake: FakeProvider, provider: Provider) -> str:
    return fake.anthropic_url if provider == "anthropic" else fake.openai_url


def key_sent(request: Recorded) -> str:
    """The key a request carried, however its SDK sends it."""
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    return request.headers.get("x-api-key") or bearer


def call(
    environ: dict[str, str], provider: Provider, base_url: str | None, api_key: str | None = None
) -> str:
    async def go() -> str:
        settings = ProviderSettings(retry=RetryPolicy(max_retries=0))
        providers = Providers(settings, environ=environ)
        try:
            client = providers.client(provider, base_url, api_key)
            request = ChatRequest(model=MODELS[provider], messages=[ChatMessage.user("Hello")])
            return (await client.chat(request)).text
        finally:
            await providers.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_the_server_key_never_reaches_an_unlisted_base_url(
    operator: FakeProvider, tenant: FakeProvider, provider: Provider
) -> None:
    with pytest.raises(KeyNotAllowed, match="TPC_PROVIDER_BASE_URLS") as refused:
        call(operator.env(), provider, url_of(tenant, provider))
    assert "api_key: ${NAME}" in str(refused.value)
    assert tenant.requests == [] and operator.requests == []


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_listed_base_url_gets_the_server_key(
    operator: FakeProvider, tenant: FakeProvider, provider: Provider
) -> None:
    tenant.script(Reply.say("hi from the listed server"))
    # Listed with a different spelling: case, default-free port, trailing slash.
    listed = tenant.url.replace("http://", "HTTP://") + "/"
    environ = {**operator.env(), "TPC_PROVIDER_BASE_URLS": f"https://other.example, {listed}"}
    assert call(environ, provider, url_of(tenant, provider)) == "hi from the listed server"
    [sent] = tenant.requests
    assert key_sent(sent) == TEST_KEY


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_the_operators_own_base_url_and_the_default_get_the_server_key(
    operator: FakeProvider, provider: Provider
) -> None:
    operator.script(Reply.say("hi"), Reply.say("hi again"))
    assert call(operator.env(), provider, None) == "hi"
    assert call(operator.env(), provider, url_of(operator, provider)) == "hi again"
    assert [key_sent(r) for r in operator.requests] == [TEST_KEY, TEST_KEY]
    policy = ProviderKeyPolicy.from_env({})
    assert policy.operator_key_allowed("anthropic", "https://api.anthropic.com/")
    assert policy.operator_key_allowed("openai", "https://API.openai.com:443/v1")
    assert not policy.operator_key_allowed("openai", "https://api.openai.com.evil.example/v1")


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_products_own_key_is_what_arrives_at_an_unlisted_base_url(
    operator: FakeProvider, tenant: FakeProvider, provider: Provider
) -> None:
    tenant.script(Reply.say("hi with your own key"))
    assert call(operator.env(), provider, url_of(tenant, provider), PRODUCT_KEY) == (
        "hi with your own key"
    )
    [sent] = tenant.requests
    assert key_sent(sent) == PRODUCT_KEY
    assert TEST_KEY not in str(dict(sent.headers))


def test_path_prefixes_match_whole_segments_and_odd_urls_never_match() -> None:
    policy = ProviderKeyPolicy.from_env({"TPC_PROVIDER_BASE_URLS": "http://proxy.local:8080/v1"})
    assert policy.operator_key_allowed("openai", "http://proxy.local:8080/v1")
    assert policy.operator_key_allowed("openai", "http://proxy.local:8080/v1/team")
    for url in (
        "http://proxy.local:8080/v10",
        "http://proxy.local/v1",
        "https://proxy.local:8080/v1",
        "http://user:pw@proxy.local:8080/v1",
        "http://proxy.local:8080/v1?x=1",
        "http://proxy.local:99999/v1",
        "ftp://proxy.local:8080/v1",
        "proxy.local:8080/v1",
    ):
        assert not policy.operator_key_allowed("openai", url), url
    assert endpoint("http://Proxy.Local:80/") == endpoint("http://proxy.local")


def test_a_bad_allow_list_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="TPC_PROVIDER_BASE_URLS must be a comma-separated"):
        ProviderKeyPolicy.from_env({"TPC_PROVIDER_BASE_URLS": "https://ok.example, not a url"})


# -- the llm runner: the key comes from the product's secret ----------------------------------


def run(environ: dict[str, str], agent: dict[str, Any], secrets: dict[str, str]) -> RunOutcome:
    request = RunRequest(
        run_id="run_keys",
        task_id="task_1",
        environment_id="env_1",
        repeat=0,
        attempt=1,
        task={"name": "hello", "prompt": "Say hello."},
        environment={"name": "Agent", "agent": agent, "limits": {}},
        secrets=secrets,
    )

    async def go() -> RunOutcome:
        providers = Providers(ProviderSettings(retry=RetryPolicy(max_retries=0)), environ=environ)
        try:
            return await LlmRunner(providers).run(request)
        finally:
            await providers.aclose()

    return asyncio.run(go())


def test_the_runner_sends_the_products_secret_to_its_base_url(
    operator: FakeProvider, tenant: FakeProvider
) -> None:
    tenant.script(Reply.say("Hello!"))
    agent = {
        "kind": "llm",
        "provider": "openai",
        "model": MODELS["openai"],
        "base_url": tenant.openai_url,
        "api_key": "${MY_KEY}",
        "tools": [],
    }
    outcome = run(operator.env(), agent, {"MY_KEY": PRODUCT_KEY, "OTHER": "x"})
    assert outcome.termination_reason == "completed"
    assert [key_sent(r) for r in tenant.requests] == [PRODUCT_KEY]
    assert operator.requests == []

    # Without its key, a base_url the operator did not list is refused before any request.
    tenant.reset()
    with pytest.raises(RunnerError, match="is not an endpoint the server's OPENAI_API_KEY"):
        run(operator.env(), {k: v for k, v in agent.items() if k != "api_key"}, {})
    with pytest.raises(RunnerError, match=r"\$\{MY_KEY\} is not a secret of this product"):
        run(operator.env(), agent, {})
    assert tenant.requests == []


# -- the service: refused when the environment is created -------------------------------------


@pytest.fixture
def service(tmp_path: Path, operator: FakeProvider) -> Iterator[Service]:
    svc = Service(Settings(database_url=f"sqlite:///{tmp_path / 'tpc.db'}"), environ=operator.env())
    yield svc
    svc.close()


def llm_env(**agent: Any) -> dict[str, Any]:
    return {
        "name": "own server",
        "agent": {"kind": "llm", "provider": "anthropic", "model": "claude-haiku-4-5", **agent},
    }


def test_an_unlisted_base_url_without_a_key_of_its_own_is_refused_at_creation(
    service: Service, operator: FakeProvider, tenant: FakeProvider
) -> None:
    created = service.catalog.bootstrap("token")
    assert created is not None
    product = created.product_id
    with pytest.raises(InvalidInput) as refused:
        service.catalog.create_environment(product, llm_env(base_url=tenant.url))
    message = str(refused.value)
    assert tenant.url in message and "TPC_PROVIDER_BASE_URLS" in message
    assert "api_key: ${NAME}" in message
    assert refused.value.problems[0][0] == "agent.base_url"

    # A literal key would stay in the event log and be shown by GET: only a reference.
    with pytest.raises(InvalidInput, match="api_key: must name a product secret"):
        service.catalog.create_environment(
            product, llm_env(base_url=tenant.url, api_key="sk-literal")
        )
    with pytest.raises(InvalidInput, match=r"agent.api_key uses \$\{MY_KEY\}"):
        service.catalog.create_environment(
            product, llm_env(base_url=tenant.url, api_key="${MY_KEY}")
        )
    service.catalog.set_secret(product, "MY_KEY", PRODUCT_KEY)
    own = service.catalog.create_environment(
        product, llm_env(base_url=tenant.url, api_key="${MY_KEY}")
    )
    assert PRODUCT_KEY not in str(own)
    # The operator's own endpoint needs no key of the product's.
    assert service.catalog.create_environment(product, llm_env(base_url=operator.anthropic_url)).id
    assert tenant.requests == []


def test_a_base_url_delisted_since_creation_is_refused_at_trigger(
    tmp_path: Path, operator: FakeProvider, tenant: FakeProvider
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'tpc.db'}")
    listed = Service(settings, environ={**operator.env(), "TPC_PROVIDER_BASE_URLS": tenant.url})
    try:
        created = listed.catalog.bootstrap("token")
        assert created is not None
        product = created.product_id
        task = listed.catalog.create_task(product, {"name": "t", "prompt": "p"}).id
        env = listed.catalog.create_environment(product, llm_env(base_url=tenant.url)).id
        exp_id = listed.experiments.create_experiment(product, "e", [task], [env]).id
    finally:
        listed.close()
    delisted = Service(settings, environ=operator.env())
    try:
        with pytest.raises(InvalidInput, match="is not an endpoint the server's ANTHROPIC_API_KEY"):
            delisted.experiments.trigger(product, exp_id)
    finally:
        delisted.close()
