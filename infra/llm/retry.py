"""Retries for provider calls (docs/spec.md §6): 408, 409, 429 and 5xx responses and lost
connections are retried with exponential backoff, waiting what the provider asks for
(`retry-after-ms`, `Retry-After`) when it says; anything else fails at once with the provider's own
message.

We retry here rather than in the SDKs (their `max_retries` is 0) so both providers behave the
same, the concurrency slot is given back while waiting, and the error names the attempts.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anthropic
import openai

from infra.llm.chat import ProviderError

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 409, 429})

_STATUS_ERRORS = (anthropic.APIStatusError, openai.APIStatusError)
_CONNECTION_ERRORS = (anthropic.APIConnectionError, openai.APIConnectionError)
_TIMEOUT_ERRORS = (anthropic.APITimeoutError, openai.APITimeoutError)
_OTHER_ERRORS = (anthropic.APIError, openai.APIError)  # e.g. an answer that does not parse


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. Defaults: 5 retries, 0.5 s doubling up to 8 s."""

    max_retries: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    # A provider asking for a longer pause gets this much; the run's time limit still applies.
    max_retry_after_s: float = 60.0

    def delay(self, retries_done: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before the next attempt."""
        asked = retry_after(headers)
        if asked is not None:
            return min(max(asked, 0.0), self.max_retry_after_s)
        backoff = min(self.base_delay_s * 2.0**retries_done, self.max_delay_s)
        return backoff * (1 - 0.25 * random.random())  # jitter spreads a thundering herd


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The pause a provider asked for: `retry-after-ms`, else `Retry-After` (seconds or date)."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        return float(lowered["retry-after-ms"]) / 1000
    except (KeyError, ValueError):
        pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else float(email.utils.mktime_tz(parsed) - time.time())


def should_retry(status: int, headers: Mapping[str, str] | None = None) -> bool:
    lowered = {key.lower(): value for key, value in (headers or {}).items()}
    explicit = lowered.get("x-should-retry")
    if explicit in ("true", "false"):
        return explicit == "true"
    return status in RETRY_STATUSES or status >= 500


async def with_retries(
    provider: str,
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    slots: asyncio.Semaphore,
) -> T:
    """Run `attempt` (one SDK call) until it succeeds, retrying what is worth retrying.

    Each attempt holds one of the provider's concurrency slots; waits between attempts do not.
    Raises `ProviderError` with the provider's message once retrying is pointless or spent.
    """
    retries = 0
    while True:
        try:
            async with slots:
                return await attempt()
        except _STATUS_ERRORS as error:
            headers = dict(error.response.headers)
            status = error.status_code
            retryable = should_retry(status, headers)
            message = f"{provider} API error {status}: {provider_message(error.body, error)}"
        except _TIMEOUT_ERRORS:
            headers, status, retryable = {}, None, True
            message = f"{provider} API did not answer in time"
        except _CONNECTION_ERRORS as error:
            headers, status, retryable = {}, None, True
            cause = f" ({error.__cause__})" if error.__cause__ else ""
            message = f"{provider} API could not be reached: {error}{cause}"
        except _OTHER_ERRORS as error:
            raise ProviderError(provider, f"{provider} API call failed: {error}") from error
        if not retryable:
            raise ProviderError(provider, message, status)
        if retries >= policy.max_retries:
            raise ProviderError(
                provider, f"{message} (gave up after {retries + 1} attempts)", status
            )
        await asyncio.sleep(policy.delay(retries, headers))
        retries += 1


def provider_message(body: Any, error: Exception) -> str:
    """The provider's own words from an error body (both providers' shapes), else the SDK's."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        kind = inner.get("type") or inner.get("code")
        return f"{inner['message']} ({kind})" if kind else str(inner["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return str(error)
