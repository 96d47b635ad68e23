"""The CLI refuses hostile YAML in `--file` quickly, with the same loader as the server's
signal configs: an alias bomb or a deeply nested file exits 2 with the reason, sending
nothing (no server is running here: a request would fail differently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.server import Server

LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@pytest.mark.parametrize(
    ("command", "document", "reason"),
    [
        (
            ("sim", "task", "create"),
            f"name: t\nprompt: p\nmetadata:\n  {LAUGHS.replace(chr(10), chr(10) + '  ')}\n",
            "refused as an alias bomb",
        ),
        (
            ("sim", "env", "create"),
            "name: e\nagent: {kind: scripted}\nlimits: " + "[" * 5_000 + "]" * 5_000 + "\n",
            "nested deeper than 100 levels",
        ),
    ],
)
def test_hostile_yaml_in_a_file_is_refused_locally(
    tmp_path: Path, command: tuple[str, ...], document: str, reason: str
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(document)
    done = Server(tmp_path).tpc(*command, "--file", str(path))
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr
