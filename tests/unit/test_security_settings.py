"""TPC_API_TOKEN and TPC_TOKEN_KEY: normalised, or refused at start with a message that says
what to set (and never echoes the token)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli.client import Connection
from api.credentials import CredentialsError
from infra.settings import Settings, SettingsError


def test_api_token_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPC_API_TOKEN", "  secret-token \n")
    assert Settings.from_env().api_token == "secret-token"


@pytest.mark.parametrize("raw", ["two words", "   "])
def test_api_token_with_inner_or_only_whitespace_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("TPC_API_TOKEN", raw)
    with pytest.raises(SettingsError, match=r"^TPC_API_TOKEN must not") as refused:
        Settings.from_env()
    assert "two words" not in str(refused.value)


def test_token_key_defaults_to_the_store_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPC_TOKEN_KEY", raising=False)
    assert Settings.from_env().token_key is None
    monkeypatch.setenv("TPC_TOKEN_KEY", "k" * 32)
    assert Settings.from_env().token_key == "k" * 32


@pytest.mark.parametrize("raw", ["short", "k" * 20 + " " + "k" * 20])
def test_a_weak_token_key_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("TPC_TOKEN_KEY", raw)
    with pytest.raises(SettingsError, match="TPC_TOKEN_KEY must be at least 32 characters"):
        Settings.from_env()


def test_the_cli_says_what_is_wrong_with_a_token_instead_of_sending_it(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "TPC_API_TOKEN": " tpc_abc def "}
    with pytest.raises(CredentialsError, match="must not contain spaces or other whitespace"):
        Connection.from_env(env)
    assert Connection.from_env({**env, "TPC_API_TOKEN": " tpc_abc\n"}).token == "tpc_abc"
