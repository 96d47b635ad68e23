"""Where the server's provider keys may go (`TPC_PROVIDER_BASE_URLS`).

`ANTHROPIC_API_KEY` / `OPENAI_API_KEY` are the operator's: they are sent only to the provider's
default endpoint, to the operator's own `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`, or to a base
URL listed in `TPC_PROVIDER_BASE_URLS` (comma-separated). A URL is allowed when its scheme,
host and port equal a listed one's and its path starts with the listed path (whole segments).
An llm environment with any other `base_url` brings the product's own key (`api_key: ${NAME}`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from domain.errors import InvalidInput
from infra.llm.chat import Provider, ProviderError
from infra.settings import SettingsError

KEY_VARS: dict[Provider, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
URL_VARS: dict[Provider, str] = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
DEFAULT_ENDPOINTS: dict[Provider, str] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
}
VARIABLE = "TPC_PROVIDER_BASE_URLS"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class KeyNotAllowed(ProviderError):
    """The server's key was about to go to a base URL the operator did not allow."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash

    def covers(self, other: Endpoint) -> bool:
        same_server = (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)
        return same_server and (other.path == self.path or other.path.startswith(self.path + "/"))


def endpoint(url: str) -> Endpoint | None:
    """The normalised endpoint of an http(s) URL; None for anything else (credentials in the
    URL, a query, a fragment, no host, a bad port): such a URL is never allowed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return None
    return Endpoint(
        scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/")
    )


@dataclass(frozen=True)
class ProviderKeyPolicy:
    """The endpoints each provider's server key may be sent to."""

    allowed: Mapping[Provider, tuple[Endpoint, ...]]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProviderKeyPolicy:
        env = os.environ if environ is None else environ
        listed: list[Endpoint] = []
        for raw in env.get(VARIABLE, "").split(","):
            if not raw.strip():
                continue
            found = endpoint(raw)
            if found is None:
                raise SettingsError(
                    f"{VARIABLE} must be a comma-separated list of http(s) base URLs without "
                    f"credentials, query or fragment (got {raw.strip()!r})"
                )
            listed.append(found)
        allowed: dict[Provider, tuple[Endpoint, ...]] = {}
        for provider, default in DEFAULT_ENDPOINTS.items():
            own = [env.get(URL_VARS[provider], "").strip(), default]
            mine = [e for e in (endpoint(url) for url in own if url) if e is not None]
            allowed[provider] = (*mine, *listed)
        return cls(allowed)

    def operator_key_allowed(self, provider: Provider, base_url: str | None) -> bool:
        """Whether the server's key may go to `base_url` (None: the operator's own URL)."""
        if base_url is None:
            return True
        target = endpoint(base_url)
        return target is not None and any(e.covers(target) for e in self.allowed[provider])

    def refusal(self, provider: Provider, base_url: str) -> str:
        return (
            f"base_url {base_url!r} is not an endpoint the server's {KEY_VARS[provider]} may be "
            f"sent to (the provider's default, {URL_VARS[provider]}, or the operator's "
            f"{VARIABLE}): the operator can list it in {VARIABLE}, or the environment brings "
            "the product's own key with `api_key: ${NAME}` naming a product secret"
        )

    def require(self, provider: Provider, base_url: str | None) -> None:
        """At the provider layer, before any client exists: raise `KeyNotAllowed`."""
        if not self.operator_key_allowed(provider, base_url):
            assert base_url is not None
            raise KeyNotAllowed(provider, self.refusal(provider, base_url))

    def check_environments(self, environments: Iterable[Mapping[str, Any]]) -> None:
        """When an environment is created or an iteration triggered: an llm agent with an
        unallowed `base_url` and no `api_key` of its own is refused (422)."""
        for definition in environments:
            agent = definition.get("agent") or {}
            provider = agent.get("provider")
            base_url = agent.get("base_url")
            if agent.get("kind") != "llm" or agent.get("api_key") or provider not in KEY_VARS:
                continue
            if not self.operator_key_allowed(provider, base_url):
                message = self.refusal(provider, str(base_url))
                raise InvalidInput(
                    f"environment {definition.get('name')!r}: {message}",
                    (("agent.base_url", message),),
                )
