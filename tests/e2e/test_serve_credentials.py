"""Two real `tpc serve` processes and the real `tpc` on one machine: a server that cannot
listen changes nothing, and each server's token is filed under its own URL, so the CLI keeps
talking to the first server with the first server's token."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.cli.exit_codes import ExitCode
from tests.e2e.server import TPC, Server, free_port

UNSET = ("TPC_API_URL", "TPC_API_TOKEN", "TPC_DATABASE_URL")


class FolderServer(Server):
    """`tpc serve` as a user starts it: in a folder (its store is ./.tpc/tpc.db), with the
    user's home, no token given (it creates one and saves it)."""

    def __init__(self, folder: Path, home: Path, port: int | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder, port=port)
        self.user_home = home

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in super().env.items() if k not in UNSET}
        return {**env, "HOME": str(self.user_home)}


def user_tpc(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({"HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", **extra})
    return subprocess.run(
        [TPC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def task_names(home: Path, **extra: str) -> list[str]:
    done = user_tpc(home, "--format", "json", "sim", "task", "list", **extra)
    assert done.returncode == 0, done.stderr
    return [task["name"] for task in json.loads(done.stdout)["items"]]


def saved(home: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((home / ".tpc" / "credentials").read_text())
    return document


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def first(home: Path) -> Iterator[FolderServer]:
    server = FolderServer(home / "first", home).start()
    yield server
    server.stop()


def test_the_first_server_saves_its_token_under_its_url(home: Path, first: FolderServer) -> None:
    credentials = saved(home)
    assert credentials["api_url"] == first.url
    assert credentials["servers"] == {first.url: credentials["token"]}
    assert (first.home / ".tpc" / "tpc.db").exists()
    created = user_tpc(home, "sim", "task", "create", "--name", "on-first", "--prompt", "p")
    assert created.returncode == 0, created.stderr
    assert task_names(home) == ["on-first"]


def test_a_second_server_on_a_taken_port_changes_nothing(home: Path, first: FolderServer) -> None:
    before = (home / ".tpc" / "credentials").read_bytes()
    other = home / "other"
    other.mkdir()
    done = subprocess.run(
        [TPC, "serve", "--port", str(first.port)],
        env=FolderServer(other, home, port=first.port).env,
        cwd=other,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ExitCode.FAILED
    assert f"error: cannot serve on 127.0.0.1:{first.port}" in done.stderr
    assert "Nothing was created or changed" in " ".join(done.stderr.split())
    assert list(other.iterdir()) == []  # no store
    assert (home / ".tpc" / "credentials").read_bytes() == before
    assert task_names(home) == ["on-first"]  # the CLI still talks to the first server


def test_a_second_server_elsewhere_keeps_the_first_ones_token(
    home: Path, first: FolderServer
) -> None:
    second = FolderServer(home / "second", home).start()
    try:
        log = " ".join(second.log.read_text().split())
        assert f"`tpc` still talks to {first.url} by default (it is running)" in log
        credentials = saved(home)
        assert credentials["api_url"] == first.url
        assert set(credentials["servers"]) == {first.url, second.url}
        assert credentials["servers"][first.url] == credentials["token"]
        # Without TPC_API_URL: the first server; with it: the second, with its own token.
        assert task_names(home) == ["on-first"]
        created = user_tpc(
            home,
            "sim",
            "task",
            "create",
            "--name",
            "on-second",
            "--prompt",
            "p",
            TPC_API_URL=second.url,
        )
        assert created.returncode == 0, created.stderr
        assert task_names(home, TPC_API_URL=second.url) == ["on-second"]
        assert task_names(home) == ["on-first"]
    finally:
        second.stop()


def test_the_earlier_single_server_file_still_works(home: Path, first: FolderServer) -> None:
    token = saved(home)["servers"][first.url]
    old_home = home / "old-home"
    (old_home / ".tpc").mkdir(parents=True)
    (old_home / ".tpc" / "credentials").write_text(
        json.dumps({"api_url": first.url, "token": token})
    )
    assert task_names(old_home) == ["on-first"]


def test_tpc_api_url_wins_over_the_saved_default(home: Path, first: FolderServer) -> None:
    elsewhere = f"http://127.0.0.1:{free_port()}"
    done = user_tpc(home, "sim", "task", "list", TPC_API_URL=elsewhere)
    assert done.returncode == ExitCode.FAILED
    assert f"cannot reach the tpc server at {elsewhere}" in done.stderr
