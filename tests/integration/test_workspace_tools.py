"""Per-run workspaces and the llm agent's tools, with real processes and real files."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from domain.network_policy import NetworkMode
from infra.runners.base import RunnerError
from infra.runners.toolbox import Toolbox
from infra.runners.tools import READ_CHARS, build_toolbox
from infra.runners.workspace import (
    CLOSED_PROXY,
    NO_ISOLATION,
    OUTPUT_LIMIT,
    Workspace,
    network_isolation,
)
from tests.eventually import eventually, eventually_async

T = TypeVar("T")
NAMESPACED = network_isolation().namespaced
needs_namespace = pytest.mark.skipif(not NAMESPACED, reason="no network namespace here")


@pytest.fixture(autouse=True)
def full_network_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests compare network modes: the operator allows them all (the cap's refusals
    are tested in test_sandbox.py)."""
    monkeypatch.setenv("TPC_AGENT_NETWORK_MAX", "full")


def run(work: Awaitable[T]) -> T:
    async def go() -> T:
        return await work

    return asyncio.run(go())


def marker() -> str:
    """A unique `sleep` duration: finds the test's processes in /proc, whatever their pid."""
    return f"{9000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"


def running(mark: str) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if mark.encode() in cmdline:
                return True
    return False


def gone(mark: str) -> bool:
    """Whether every process carrying `mark` has ended (killing is not instantaneous)."""
    return eventually(lambda: not running(mark), what=f"{mark} ended", timeout=10)


async def appeared(mark: str) -> None:
    await eventually_async(lambda: running(mark), what=f"{mark} started")


# -- workspaces -----------------------------------------------------------------------------


def test_the_template_is_copied_and_the_workspace_removed(tmp_path: Path) -> None:
    template = tmp_path / "template"
    (template / "src").mkdir(parents=True)
    (template / "src" / "app.py").write_text("print('hi')\n")
    (template / "link").symlink_to("src/app.py")

    async def go() -> Path:
        async with Workspace.create(str(template), "run_abc/../x") as workspace:
            assert workspace.path.name.startswith("tpc-run_abc_")
            assert (workspace.path / "src" / "app.py").read_text() == "print('hi')\n"
            assert os.readlink(workspace.path / "link") == "src/app.py"
            result = await workspace.run(["python3", "src/app.py"], timeout_s=30, network="full")
            assert (result.exit_code, result.stdout) == (0, b"hi\n")
            (workspace.path / "made-by-agent").mkdir(mode=0o500)  # read-only: still removed
            return workspace.path

    path = run(go())
    assert not path.exists()
    assert (template / "src" / "app.py").exists()


def test_a_missing_template_is_a_clear_runner_error(tmp_path: Path) -> None:
    async def go() -> None:
        async with Workspace.create(str(tmp_path / "nope"), "run_1"):
            pass

    with pytest.raises(RunnerError, match=r"workspace template .*nope.* is not a folder"):
        run(go())


def test_commands_get_a_minimal_environment_not_the_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TPC_TEST_SERVER_SECRET", "s3cret")

    async def go() -> bytes:
        async with Workspace.create(None, "run_env") as workspace:
            result = await workspace.run(
                "env; pwd", timeout_s=30, env={"GIVEN": "yes"}, network="full"
            )
            assert result.exit_code == 0
            assert f"HOME={workspace.path}\n".encode() in result.stdout
            assert result.stdout.endswith(f"{workspace.path}\n".encode())
            return result.stdout

    output = run(go())
    assert b"GIVEN=yes" in output
    assert b"PATH=" in output
    assert b"s3cret" not in output


def test_a_timeout_kills_the_whole_process_group() -> None:
    mark = marker()

    async def go() -> None:
        async with Workspace.create(None, "run_timeout") as workspace:
            command = f"sh -c 'sleep {mark}' & echo started; wait"
            result = await workspace.run(command, timeout_s=1, network="full")
            assert result.timed_out
            assert result.exit_code is None
            assert result.stdout == b"started\n"

    run(go())
    assert gone(mark)


@pytest.mark.parametrize("network", ["full", "none"])
def test_cancelling_the_run_kills_the_group_and_removes_the_workspace(network: NetworkMode) -> None:
    mark = marker()
    paths: list[Path] = []

    async def agent() -> None:
        async with Workspace.create(None, "run_cancel") as workspace:
            paths.append(workspace.path)
            await workspace.run(f"sh -c 'sleep {mark}' & wait", timeout_s=60, network=network)

    async def go() -> None:
        task = asyncio.create_task(agent())
        await asyncio.wait_for(appeared(mark), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go())
    assert gone(mark)
    assert paths and not paths[0].exists()


def test_a_cancellation_at_any_point_of_the_start_stops_the_command() -> None:
    """asyncio itself can hang when cancelled while it connects a new process's pipes: a
    cancellation after each possible number of loop steps must stop the command, promptly."""
    mark = marker()

    async def go() -> None:
        async with Workspace.create(None, "run_start") as workspace:
            for steps in range(15):
                command = f"sh -c 'sleep {mark}' & wait"
                task = asyncio.create_task(workspace.run(command, timeout_s=60, network="full"))
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=30)
                assert done, f"a cancellation after {steps} loop steps did not stop the command"

    run(go())
    assert gone(mark)


def test_what_a_command_leaves_running_ends_with_it() -> None:
    mark = marker()

    async def go() -> None:
        async with Workspace.create(None, "run_bg") as workspace:
            # The background sleep holds stdout open: the run must not wait for it.
            result = await workspace.run(f"sleep {mark} & echo left", timeout_s=60, network="full")
            assert (result.exit_code, result.stdout, result.timed_out) == (0, b"left\n", False)

    run(go())
    assert gone(mark)


@needs_namespace
def test_without_network_even_a_new_session_dies_with_the_command() -> None:
    mark = marker()

    async def go() -> None:
        async with Workspace.create(None, "run_setsid") as workspace:
            result = await workspace.run(
                f"setsid sleep {mark} & echo ok", timeout_s=60, network="none"
            )
            assert result.stdout == b"ok\n"

    run(go())
    assert gone(mark)


def test_output_is_capped_and_says_so() -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_big") as workspace:
            command = f"head -c {OUTPUT_LIMIT + 5000} /dev/zero | tr '\\0' x; echo oops >&2"
            result = await workspace.run(command, timeout_s=60, network="none")
            assert result.exit_code == 0
            assert result.stdout.startswith(b"x" * OUTPUT_LIMIT)
            assert result.stdout[OUTPUT_LIMIT:] == b"\n[output truncated: 5000 more bytes]\n"
            assert result.stderr == b"oops\n"

    run(go())


def test_stdin_lines_and_a_failing_line_handler() -> None:
    mark = marker()
    lines: list[bytes] = []

    def handle(line: bytes) -> None:
        lines.append(line)
        if line == b"stop":
            raise ValueError("bad line")

    async def go() -> None:
        async with Workspace.create(None, "run_lines") as workspace:
            result = await workspace.run(
                "cat; printf 'no newline'", timeout_s=30, stdin=b"a\nb\n", on_stdout_line=handle
            )
            assert result.stdout == b"a\nb\nno newline"
            assert lines == [b"a", b"b", b"no newline"]
            lines.clear()
            with pytest.raises(ValueError, match="bad line"):
                await workspace.run(f"echo stop; sleep {mark}", timeout_s=60, on_stdout_line=handle)

    run(go())
    assert lines == [b"stop"]
    assert gone(mark)


def test_a_command_that_cannot_start_exits_127() -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_127") as workspace:
            result = await workspace.run(["no-such-agent-cli"], timeout_s=30, network="full")
            assert result.exit_code == 127
            assert b"no-such-agent-cli" in result.stderr

    run(go())


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A listening TCP socket on 127.0.0.1 of this (the server's) network namespace."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def connect_script(port: int) -> list[str]:
    # bash's /dev/tcp: a program the agent's unprivileged user can run (this test's python
    # may live in a folder that user cannot enter).
    return ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo ok"]


@needs_namespace
def test_without_network_a_command_cannot_reach_the_servers_loopback(loopback_server: int) -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_net") as workspace:
            allowed = await workspace.run(
                connect_script(loopback_server), timeout_s=30, network="full"
            )
            assert (allowed.exit_code, allowed.stdout) == (0, b"ok\n")
            denied = await workspace.run(
                connect_script(loopback_server), timeout_s=30, network="none"
            )
            assert denied.exit_code != 0
            assert b"ok" not in denied.stdout
            assert b"Connection refused" in denied.stderr or b"unreachable" in denied.stderr

    run(go())


def test_without_namespaces_commands_get_a_closed_proxy() -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_proxy", isolation=NO_ISOLATION) as workspace:
            denied = await workspace.run("env", timeout_s=30, network="none")
            assert f"https_proxy={CLOSED_PROXY}".encode() in denied.stdout
            assert f"HTTP_PROXY={CLOSED_PROXY}".encode() in denied.stdout
            allowed = await workspace.run("env", timeout_s=30, network="full")
            assert b"https_proxy=" not in allowed.stdout

    run(go())


def test_the_success_command_runs_in_the_workspace() -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_check") as workspace:
            (workspace.path / "out.txt").write_text("42\n")
            assert await workspace.check("grep -q 42 out.txt", timeout_s=30)
            assert not await workspace.check("grep -q 43 out.txt", timeout_s=30)
            assert not await workspace.check("sleep 30", timeout_s=0.5)

    run(go())


# -- tools ----------------------------------------------------------------------------------


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "guides" / "customers.md").write_text(
        "# Customers\n\nCustomers are people who pay you.\n\n"
        "To create a customer, call `acme.Customer.create(name=...)`.\n"
        "Deleting a customer is permanent.\n"
    )
    (root / "quickstart.md").write_text("# Quickstart\n\nInstall the SDK: `pip install acme`.\n")
    (root / "webhooks.html").write_text(
        "<html><head><title>Webhooks &amp; events</title></head>\n"
        "<body><p>Register a <b>webhook</b> endpoint.</p></body></html>\n"
    )
    (root / "big.txt").write_text("word " * (READ_CHARS // 2))
    (root / ".git" / "customers.md").write_text("create customer create customer")
    (root / "logo.png").write_bytes(b"\x89PNG customer")
    (tmp_path / "secret.md").write_text("outside the docs")
    (root / "escape.md").symlink_to(tmp_path / "secret.md")
    return root


def call(toolbox: Toolbox, name: str, tool_input: dict[str, object]) -> tuple[str, bool]:
    result = run(toolbox.call(name, dict(tool_input)))
    return result.content, result.is_error


def test_the_tools_describe_themselves(docs: Path) -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_specs") as workspace:
            tools = ["search_docs", "read_doc", "shell", "write_file"]
            toolbox = build_toolbox(tools, workspace, docs, network="none", shell_timeout_s=5)
            assert [spec.name for spec in toolbox.specs] == tools
            for spec in toolbox.specs:
                assert len(spec.description) > 40
                assert spec.input_schema["type"] == "object"
                assert set(spec.input_schema["required"]) <= set(spec.input_schema["properties"])

    run(go())


def test_search_docs_ranks_matching_files_with_their_lines(docs: Path) -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_search") as workspace:
            toolbox = build_toolbox(
                ["search_docs"], workspace, docs, network="none", shell_timeout_s=5
            )
            result = await toolbox.call("search_docs", {"query": "How to create a customer?"})
            assert not result.is_error
            lines = result.content.splitlines()
            assert lines[0] == "1 document match 'How to create a customer?':"
            assert lines[1] == "1. guides/customers.md — Customers"
            assert lines[2:5] == [
                "   1: # Customers",
                "   3: Customers are people who pay you.",
                "   5: To create a customer, call `acme.Customer.create(name=...)`.",
            ]
            assert ".git" not in result.content and "logo.png" not in result.content
            html = await toolbox.call("search_docs", {"query": "webhook endpoint"})
            assert "webhooks.html — Webhooks & events" in html.content
            assert "2: Register a  webhook  endpoint." in html.content
            none = await toolbox.call("search_docs", {"query": "kubernetes"})
            assert not none.is_error and "No document matches 'kubernetes'" in none.content
            for bad in ({"query": "  "}, {}, {"query": "x", "max_results": 0}):
                assert (await toolbox.call("search_docs", bad)).is_error

    run(go())


def test_read_doc_reads_inside_the_docs_only(docs: Path) -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_read") as workspace:
            toolbox = build_toolbox(
                ["read_doc"], workspace, docs, network="none", shell_timeout_s=5
            )
            ok = await toolbox.call("read_doc", {"path": "guides/customers.md"})
            assert not ok.is_error and ok.content.startswith("# Customers\n")
            for path in ("../secret.md", "/etc/passwd", "guides/../../secret.md", "~/x.md"):
                refused = await toolbox.call("read_doc", {"path": path})
                assert refused.is_error and "relative to the docs folder" in refused.content
            escape = await toolbox.call("read_doc", {"path": "escape.md"})
            assert escape.is_error and "leads outside the docs folder" in escape.content
            missing = await toolbox.call("read_doc", {"path": "guides/customer.md"})
            assert missing.is_error and "Did you mean: guides/customers.md" in missing.content
            folder = await toolbox.call("read_doc", {"path": "guides"})
            assert folder.is_error and "guides/customers.md" in folder.content
            first = await toolbox.call("read_doc", {"path": "big.txt"})
            assert f'"offset": {READ_CHARS}' in first.content
            rest = await toolbox.call("read_doc", {"path": "big.txt", "offset": READ_CHARS})
            assert rest.content.startswith("word word")
            assert f'"offset": {2 * READ_CHARS}' in rest.content
            last = await toolbox.call("read_doc", {"path": "big.txt", "offset": 2 * READ_CHARS})
            assert last.content == "word " * (READ_CHARS // 10)

    run(go())


def test_doc_tools_without_docs_say_so_and_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_nodocs") as workspace:
            toolbox = build_toolbox(
                ["read_doc"], workspace, None, network="none", shell_timeout_s=5
            )
            result = await toolbox.call("read_doc", {"path": "a.md"})
            assert result.is_error and "no docs folder" in result.content
            with pytest.raises(RunnerError, match=r"docs folder .* does not exist"):
                build_toolbox(
                    ["read_doc"], workspace, tmp_path / "x", network="none", shell_timeout_s=5
                )
            with pytest.raises(RunnerError, match="unknown tools"):
                build_toolbox(["browse"], workspace, None, network="none", shell_timeout_s=5)

    run(go())


def test_shell_reports_exit_codes_output_and_timeouts() -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_shell") as workspace:
            toolbox = build_toolbox(["shell"], workspace, None, network="none", shell_timeout_s=1)
            ok = await toolbox.call("shell", {"command": "echo hello; echo warn >&2"})
            assert (ok.content, ok.is_error) == (
                "exit code 0\n--- stdout ---\nhello\n\n--- stderr ---\nwarn\n",
                False,
            )
            failed = await toolbox.call("shell", {"command": "exit 3"})
            assert (failed.content, failed.is_error) == ("exit code 3\n(no output)", True)
            slow = await toolbox.call("shell", {"command": "echo partial; sleep 30"})
            assert slow.is_error
            assert slow.content.startswith("The command timed out after 1 s and was stopped.")
            assert "partial" in slow.content
            long = await toolbox.call("shell", {"command": "seq 1 20000"})
            assert "characters omitted" in long.content
            assert long.content.splitlines()[2] == "1" and long.content.endswith("20000\n")
            assert (await toolbox.call("shell", {"command": 5})).is_error

    run(go())


def test_write_file_writes_inside_the_workspace_only(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()

    async def go() -> None:
        async with Workspace.create(None, "run_write") as workspace:
            (workspace.path / "out").symlink_to(outside)
            toolbox = build_toolbox(
                ["write_file", "shell"], workspace, None, network="none", shell_timeout_s=5
            )
            done = await toolbox.call(
                "write_file", {"path": "src/main.py", "content": "print(1)\n"}
            )
            assert (done.content, done.is_error) == ("Wrote 9 bytes to src/main.py.", False)
            assert (workspace.path / "src" / "main.py").read_text() == "print(1)\n"
            ran = await toolbox.call("shell", {"command": "python3 src/main.py"})
            assert "--- stdout ---\n1\n" in ran.content
            for path in ("../evil.py", "/tmp/evil.py", "a/../../evil.py"):
                refused = await toolbox.call("write_file", {"path": path, "content": "x"})
                assert refused.is_error and "relative to the workspace" in refused.content
            through = await toolbox.call("write_file", {"path": "out/evil.py", "content": "x"})
            assert through.is_error and "leads outside the workspace" in through.content
            folder = await toolbox.call("write_file", {"path": "src", "content": "x"})
            assert folder.is_error and "is a folder" in folder.content
            assert (await toolbox.call("write_file", {"path": "a.txt"})).is_error
            unknown = await toolbox.call("read_doc", {"path": "a"})
            assert unknown.is_error and "Available tools: write_file, shell" in unknown.content

    run(go())
    assert list(outside.iterdir()) == []
