"""The `tpc` CLI's HTTP client: where the server is, which token to send, and what its errors mean.

The server is `TPC_API_URL` (default http://127.0.0.1:8642) and the token `TPC_API_TOKEN`;
either may instead come from `~/.tpc/credentials` (the default server and each server's token,
api/credentials.py), which `tpc serve` writes when it creates a product. Every failure becomes
a `DomainError`, so the central handler in `api.cli.main` prints it on stderr and exits non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import click
import httpx
from pydantic import ValidationError

from api.credentials import CredentialsError, read_credentials
from domain.api_tokens import token_problem
from domain.errors import Conflict, DomainError, InvalidInput, NotFound, Unauthorized
from projections.read_models import ReadModel

R = TypeVar("R", bound=ReadModel)

DEFAULT_API_URL = "http://127.0.0.1:8642"
TIMEOUT_S = 30.0
Problems = tuple[tuple[str, str], ...]


class ServerUnreachable(DomainError):
    """Nothing answers at the API address (connection refused, unknown host, timeout)."""


class ApiError(DomainError):
    """The server answered with an error: its status, message and located problems."""

    def __init__(self, message: str, status: int, problems: Problems = ()) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


class TokenRejected(ApiError, Unauthorized):
    """HTTP 401: no token, or one the server does not know."""


class ApiNotFound(ApiError, NotFound):
    """HTTP 404: an unknown id (or another product's)."""


class ApiConflict(ApiError, Conflict):
    """HTTP 409: the current state does not allow the change."""


class ApiInvalid(ApiError, InvalidInput):
    """HTTP 422: invalid content; `problems` say where (printed by the central handler)."""


def segment(value: str | int) -> str:
    """One URL path segment, escaped so an id can never change the path."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class Connection:
    """Where the server is and which token to send (None: send none, the server says 401)."""

    api_url: str
    token: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Connection:
        env = os.environ if environ is None else environ
        url = env.get("TPC_API_URL", "").strip()
        token = env.get("TPC_API_TOKEN", "").strip()
        if not url or not token:
            saved = read_credentials(credentials_path(env))
            url = url or saved.default_url or ""
            # Only the token saved for this very server: another server's would be rejected.
            token = token or saved.token_for(url or DEFAULT_API_URL) or ""
        problem = token_problem(token) if token else None
        if problem is not None:
            # The server would only answer 401: say what is wrong with the token instead.
            raise CredentialsError(
                f"the API token (TPC_API_TOKEN or {credentials_path(env)}) {problem}"
            )
        url = (url or DEFAULT_API_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise CredentialsError(
                f"the API address {url!r} is not an http(s) URL (set TPC_API_URL, "
                f"e.g. {DEFAULT_API_URL})"
            )
        return cls(url, token or None)


def credentials_path(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".tpc" / "credentials"


class ApiClient:
    """A small synchronous client of the `/v1` API (docs/api.md); returns decoded JSON."""

    def __init__(
        self, connection: Connection, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.connection = connection
        headers = {"User-Agent": f"tpc/{version('tpc-sim')}", "Accept": "application/json"}
        if connection.token:
            headers["Authorization"] = f"Bearer {connection.token}"
        self._http = httpx.Client(
            base_url=connection.api_url, headers=headers, timeout=TIMEOUT_S, transport=transport
        )

    @classmethod
    def from_env(cls) -> ApiClient:
        return cls(Connection.from_env())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str | int | None] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def get_model(
        self, path: str, model: type[R], params: Mapping[str, str | int | None] | None = None
    ) -> tuple[Any, R]:
        """The answer as received (what `--format json` prints) and as its read model."""
        document = self.get(path, params)
        return document, parse(model, document)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int | None] | None = None,
        body: Any = None,
    ) -> Any:
        query = {key: value for key, value in (params or {}).items() if value is not None}
        url = self.connection.api_url
        try:
            response = self._http.request(method, path, params=query, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise ServerUnreachable(
                f"cannot reach the tpc server at {url}: is `tpc serve` running? "
                f"(set TPC_API_URL) [{error or type(error).__name__}]"
            ) from None
        except httpx.TimeoutException:
            raise ServerUnreachable(
                f"the tpc server at {url} did not answer within {TIMEOUT_S:.0f} s"
            ) from None
        except httpx.TransportError as error:
            raise ServerUnreachable(
                f"lost the connection to the tpc server at {url}: {error or type(error).__name__}"
            ) from None
        if response.is_success:
            return _decoded(response, url)
        raise self._error(response)

    def list_all(self, path: str, params: Mapping[str, str | int | None] | None = None) -> Any:
        """Every page of a list endpoint, as one `{"items", "next_cursor": null}` document."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self.get(path, {**(params or {}), "limit": 500, "cursor": cursor})
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return {"items": items, "next_cursor": None}

    def _error(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        message, problems = _error_body(response)
        if status == 401:
            hint = (
                "the server rejected the token"
                if self.connection.token
                else "no API token was found"
            )
            return TokenRejected(
                f"{hint} (set TPC_API_TOKEN or run `tpc serve` once to create "
                f"~/.tpc/credentials): {message}",
                status,
            )
        if status == 422:
            return ApiInvalid(message, status, problems)
        # Problems outside a 422 are unexpected; keep them visible in the message.
        detail = "".join(f"\n  {loc}: {text}" if loc else f"\n  {text}" for loc, text in problems)
        if status == 404:
            return ApiNotFound(message + detail, status)
        if status == 409:
            return ApiConflict(message + detail, status)
        if status >= 500:
            return ApiError(f"the tpc server failed (HTTP {status}): {message}{detail}", status)
        return ApiError(
            f"the server refused the request (HTTP {status}): {message}{detail}", status
        )


def parse(model: type[R], document: Any) -> R:
    """An answer as its read model (projections/read_models.py): the one place the CLI reads
    the server's shapes. An answer that is not that shape is a clear error, not a traceback."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise ApiError(
            f"the server answered something that is not a {model.__name__} "
            f"({where}: {first['msg']}): is TPC_API_URL a tpc server of this version?",
            200,
        ) from None


def _decoded(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            f"{url} answered HTTP {response.status_code} with something that is not JSON: "
            "is TPC_API_URL a tpc server?",
            response.status_code,
        ) from None


def _error_body(response: httpx.Response) -> tuple[str, Problems]:
    """The server's `{"error": {"message", "problems"}}`, or a summary of a foreign answer."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        text = " ".join(response.text.split())[:200]
        return f"HTTP {response.status_code} {response.reason_phrase}: {text}".rstrip(": "), ()
    message = str(error.get("message") or error.get("code") or f"HTTP {response.status_code}")
    problems: list[tuple[str, str]] = []
    for item in error.get("problems") or []:
        if isinstance(item, dict):
            problems.append((str(item.get("loc") or ""), str(item.get("message") or "")))
        else:
            problems.append(("", str(item)))
    return message, tuple(problems)


def api_client() -> ApiClient:
    """The running command's client, closed when the command ends."""
    context = click.get_current_context()
    return context.with_resource(ApiClient.from_env())
