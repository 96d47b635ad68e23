"""`~/.tpc/credentials`: the API token of each server this machine started, keyed by its URL.

The file is JSON `{"api_url", "token", "servers": {URL: token}}`: `api_url`/`token` name the
default server (what `tpc` talks to without TPC_API_URL), `servers` every server's token. A
file of the earlier shape, `{"api_url", "token"}` alone, reads as one server. A server only
adds or replaces its own entry, and takes the default only from a server that is not running,
so starting a second server never takes the token away from the first.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from domain.errors import DomainError


class CredentialsError(DomainError):
    """The credentials file exists but cannot be read as the shape above, or the API address
    is not an http(s) URL."""


def server_key(url: str) -> str:
    """The form a URL is filed under: no trailing slash, scheme and host in lower case."""
    parts = urlsplit(url.strip().rstrip("/"))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


@dataclass(frozen=True)
class SavedCredentials:
    default_url: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    def token_for(self, url: str) -> str | None:
        return self.tokens.get(server_key(url))

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {}
        if self.default_url is not None:
            document["api_url"] = self.default_url
            token = self.token_for(self.default_url)
            if token is not None:
                document["token"] = token  # what a tpc that knows no `servers` reads
        document["servers"] = dict(self.tokens)
        return document


def read_credentials(path: Path) -> SavedCredentials:
    """The saved servers and tokens; empty when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SavedCredentials()
    except (OSError, UnicodeDecodeError) as error:
        raise CredentialsError(f"cannot read {path}: {error}") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    servers = data.get("servers", {}) if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or not all(isinstance(data.get(key, ""), str) for key in ("api_url", "token"))
        or not isinstance(servers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in servers.items())
    ):
        raise CredentialsError(
            f'{path} is not a JSON object {{"api_url", "token", "servers"}}: fix or delete '
            "it, or set TPC_API_URL and TPC_API_TOKEN"
        )
    tokens = {server_key(url): token for url, token in servers.items() if token}
    default = str(data.get("api_url") or "") or None
    if default is not None and data.get("token"):
        tokens.setdefault(server_key(default), str(data["token"]))
    return SavedCredentials(default, tokens)


def save_token(path: Path, url: str, token: str) -> str | None:
    """File `token` under `url`, keeping every other server's; the default moves to `url`
    unless another default server is running. Returns a note for the user when it stays."""
    try:
        saved = read_credentials(path)
    except CredentialsError:
        saved = SavedCredentials()  # unreadable: replaced, as there is nothing to keep
    tokens = {**saved.tokens, server_key(url): token}
    default = saved.default_url
    keep_default = (
        default is not None and server_key(default) != server_key(url) and is_listening(default)
    )
    chosen = default if keep_default and default is not None else url
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(SavedCredentials(chosen, tokens).to_json(), indent=2) + "\n")
    temporary.chmod(0o600)
    os.replace(temporary, path)  # whole or not at all: a reader never sees half a file
    if keep_default:
        return (
            f"`tpc` still talks to {default} by default (it is running); "
            f"set TPC_API_URL={url} to talk to this server"
        )
    return None


def is_listening(url: str) -> bool:
    """Whether something accepts connections at the URL's host and port."""
    parts = urlsplit(url)
    if parts.hostname is None:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=1):
            return True
    except OSError:
        return False
