"""Retry decisions and provider settings: pure functions, no provider involved."""

from __future__ import annotations

import email.utils
import time

import pytest

from infra.llm.providers import InvalidProviderSetting, ProviderSettings, provider_for_model
from infra.llm.retry import RetryPolicy, retry_after, should_retry


def test_retry_after_prefers_milliseconds_then_seconds_then_a_date() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "1.5"}) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after({"retry-after": later}) or 0) <= 31
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
    assert retry_after(None) is None


RETRIED = (408, 409, 429, 500, 503, 529)


@pytest.mark.parametrize("status", [*RETRIED, 400, 401, 403, 404, 422])
def test_which_statuses_are_retried(status: int) -> None:
    assert should_retry(status) is (status in RETRIED)


def test_the_provider_can_say_whether_to_retry() -> None:
    assert should_retry(500, {"x-should-retry": "false"}) is False
    assert should_retry(400, {"X-Should-Retry": "true"}) is True


def test_the_delay_is_what_the_provider_asks_for_within_a_cap() -> None:
    policy = RetryPolicy(max_retry_after_s=60)
    assert policy.delay(0, {"retry-after-ms": "1200"}) == 1.2
    assert policy.delay(3, {"retry-after": "2"}) == 2.0
    assert policy.delay(0, {"retry-after": "3600"}) == 60
    assert policy.delay(0, {"retry-after": "-5"}) == 0


def test_without_a_hint_the_delay_backs_off_exponentially_up_to_a_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    for retries, full in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = policy.delay(retries)
        assert 0.75 * full <= delay <= full  # jitter takes off at most a quarter


def test_provider_settings_come_from_the_environment() -> None:
    settings = ProviderSettings.from_env(
        {
            "TPC_PROVIDER_CONCURRENCY": "7",
            "TPC_PROVIDER_MAX_RETRIES": "0",
            "TPC_PROVIDER_TIMEOUT_S": "2.5",
        }
    )
    assert (settings.concurrency, settings.retry.max_retries, settings.timeout_s) == (7, 0, 2.5)
    assert ProviderSettings.from_env({}).concurrency == 100


@pytest.mark.parametrize("value", ["0", "-1", "many", "2.5"])
def test_an_unusable_concurrency_is_a_clear_error(value: str) -> None:
    with pytest.raises(InvalidProviderSetting, match="TPC_PROVIDER_CONCURRENCY must be an integer"):
        ProviderSettings.from_env({"TPC_PROVIDER_CONCURRENCY": value})


def test_models_map_to_providers_by_name() -> None:
    assert provider_for_model("claude-haiku-4-5") == "anthropic"
    assert provider_for_model("gpt-4.1-mini") == "openai"
    assert provider_for_model("llama-3") is None
