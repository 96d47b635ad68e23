"""Environment files name folders relative to themselves; the server gets absolute paths."""

from __future__ import annotations

from pathlib import Path

from api.cli.env_commands import with_absolute_folders


def test_relative_folders_are_resolved_against_the_file(tmp_path: Path) -> None:
    body = {"name": "n", "agent": {"kind": "llm", "docs": "./site", "workspace": "tpl"}}
    resolved = with_absolute_folders(body, tmp_path)
    assert resolved["agent"]["docs"] == str((tmp_path / "site").resolve())
    assert resolved["agent"]["workspace"] == str((tmp_path / "tpl").resolve())


def test_absolute_folders_and_other_agents_are_left_alone(tmp_path: Path) -> None:
    body = {"agent": {"kind": "llm", "docs": "/srv/docs"}}
    assert with_absolute_folders(body, tmp_path)["agent"]["docs"] == "/srv/docs"
    scripted = {"agent": {"kind": "scripted"}}
    assert with_absolute_folders(scripted, tmp_path) == {"agent": {"kind": "scripted"}}
    assert with_absolute_folders({"agent": "not a mapping"}, tmp_path) == {"agent": "not a mapping"}
