"""Every ```sh block of README.md and docs/quickstart.md, run literally, in order, in one bash
session, against a real `tpc serve`: a newcomer can follow the pages as written.

Conventions for those pages (an HTML comment on the line before a block):

- `<!-- doc-test: skip (why) -->`: not run here, with the reason; for `make` targets (the suite
  would run itself, and `make demo` has its own test).
- `<!-- doc-test: server (…) -->`: a block of one command that starts a server; it is started in
  the background (a trailing `&` is dropped) and the blocks after it run once it answers.

Each page runs in a fresh folder holding the project's `examples/` and a link to its `.venv`,
with a fresh HOME (the server saves its token there) and TPC_PORT set to a free port, so the
literal `tpc serve` does not collide with anything else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.server import PROVIDER_VARIABLES, free_port
from tests.eventually import eventually

PAGES = ("README.md", "docs/quickstart.md")
MARKER = re.compile(r"<!--\s*doc-test:\s*(skip|server)\b.*-->")
FENCE = re.compile(r"^```(\w*)\s*$")
# What the pages' readers would not have set: the test server and CLI find each other
# through the saved credentials, as a reader's do.
UNSET = ("TPC_API_URL", "TPC_API_TOKEN", "TPC_DATABASE_URL", "VIRTUAL_ENV", *PROVIDER_VARIABLES)


@dataclass(frozen=True)
class Block:
    text: str
    mark: str | None  # "skip", "server" or None
    line: int


def sh_blocks(page: Path) -> list[Block]:
    """The page's fenced `sh` blocks, each with the doc-test mark on the line before it."""
    blocks: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if fence.group(1) != "sh":
            continue
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marked = MARKER.search(before)
        blocks.append(Block("\n".join(body), marked.group(1) if marked else None, start + 1))
    return blocks


def server_command(block: Block) -> str:
    """The one command of a server block, without its comment or trailing `&`."""
    commands = [line for line in block.text.splitlines() if line.strip()]
    assert len(commands) == 1, f"line {block.line}: a server block holds one command"
    command = re.sub(r"\s#.*$", "", commands[0]).strip()
    return command.removesuffix("&").strip()


def script(blocks: list[Block], port: int) -> str:
    """One bash script of every block, the server started in the background."""
    parts = ["set -euo pipefail", "set -x"]
    for block in blocks:
        parts.append(f"# -- block at line {block.line} ({block.mark or 'run'})")
        if block.mark == "skip":
            continue
        if block.mark == "server":
            parts.append(f"exec_server() {{ exec {server_command(block)}; }}")
            parts.append("exec_server > server.log 2>&1 &\necho $! > server.pid")
            parts.append(
                'for _ in $(seq 1 600); do python3 -c "import urllib.request; '
                f"urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=1)\" "
                "2>/dev/null && break; sleep 0.1; done"
            )
            continue
        parts.append(block.text)
    return "\n".join(parts) + "\n"


def stop_server(pid: int) -> None:
    """SIGTERM the server the page started (our own, by its id) and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:  # it is bash's child, not ours: watch for it to go
        eventually(lambda: not alive(pid), what=f"server {pid} stopped", interval=0.1)
    except AssertionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def folder_for(tmp_path: Path) -> Path:
    """A reader's checkout: the examples and the installed `.venv` (linked)."""
    work = tmp_path / "project"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    (work / ".venv").symlink_to(Path(sys.executable).resolve().parent.parent)
    if not (work / ".venv" / "bin" / "tpc").exists():  # the interpreter is not the venv's
        (work / ".venv").unlink()
        (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return work


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_command_blocks_run_as_written(page: str, tmp_path: Path) -> None:
    blocks = sh_blocks(ROOT / page)
    assert [b for b in blocks if b.mark is None], f"{page} has no command block to run"
    work = folder_for(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(
        {
            "HOME": str(home),
            "TPC_PORT": str(port),
            "TPC_POLL_INTERVAL": "0.2",
            "COLUMNS": "120",
            "NO_COLOR": "1",
            # The server block of a page is run after `source .venv/bin/activate` elsewhere.
            "PATH": f"{work / '.venv' / 'bin'}:{env.get('PATH', '')}",
        }
    )
    (work / "page.sh").write_text(script(blocks, port))
    try:
        done = subprocess.run(
            ["bash", "page.sh"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        pid_file = work / "server.pid"
        if pid_file.exists():
            stop_server(int(pid_file.read_text()))
    log = (work / "server.log").read_text() if (work / "server.log").exists() else ""
    assert done.returncode == 0, f"{page}:\n{done.stderr[-6000:]}\nserver:\n{log[-2000:]}"


def test_every_block_is_run_or_says_why_not() -> None:
    for page in PAGES:
        for block in sh_blocks(ROOT / page):
            if block.mark == "skip":
                assert "make " in block.text, f"{page}:{block.line}: only make targets are skipped"
            if block.mark == "server":
                assert "tpc serve" in server_command(block)


def test_the_quickstart_folder_holds_exactly_what_the_quickstart_uses() -> None:
    text = (ROOT / "docs" / "quickstart.md").read_text()
    folder = ROOT / "examples" / "quickstart"
    used = set(re.findall(r"examples/quickstart/[\w./-]*[\w/]", text))
    for path in used:
        assert (ROOT / path).exists(), f"the quickstart uses {path}, which is missing"
    shipped = {
        f"examples/quickstart/{p.relative_to(folder)}" for p in folder.rglob("*") if p.is_file()
    }
    mentioned = {
        path
        for path in shipped
        if path in used
        or any(path.startswith(u.rstrip("/") + "/") for u in used)
        or path.startswith("examples/quickstart/docs-site/")  # llm-env.yaml's docs: ./docs-site
    }
    assert shipped == mentioned


def test_the_quickstarts_llm_environment_is_the_shipped_file() -> None:
    from api.cli.inputs import check_definition, read_definition_file
    from api.http.bodies import EnvironmentCreate

    text = (ROOT / "docs" / "quickstart.md").read_text()
    shown = re.search(r"```yaml\n(# examples/quickstart/llm-env.yaml\n.*?)```", text, re.S)
    assert shown is not None
    path = ROOT / "examples" / "quickstart" / "llm-env.yaml"
    assert shown.group(1) == path.read_text()
    check_definition(EnvironmentCreate, read_definition_file(path, "environment"), "env", {})
    assert (path.parent / "docs-site").is_dir()
