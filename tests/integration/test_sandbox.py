"""The sandbox of product-supplied commands, with real processes: the unprivileged user, the
refusal of root, resource limits, network modes and the operator's network cap.

Run as root (here and in CI) the commands switch to `nobody`; run as another user they stay
that user, and the tests assert that instead. Network tests assert what the probe found: a
namespace where `unshare` works here, closed proxy variables where it does not."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from domain.definitions import parse_environment
from domain.environment_network import check_network
from domain.errors import InvalidInput
from domain.network_policy import NetworkMode
from infra.runners.base import RunnerError, RunRequest
from infra.runners.command import CommandRunner
from infra.runners.sandbox import SandboxError, SandboxSettings
from infra.runners.tools import build_toolbox
from infra.runners.workspace import CLOSED_PROXY, NO_ISOLATION, Workspace, network_isolation
from infra.settings import SettingsError

T = TypeVar("T")
AS_ROOT = os.geteuid() == 0
NOBODY = 65534
AGENT_UID = NOBODY if AS_ROOT else os.geteuid()
ISOLATION = network_isolation()
OWN_PROC = "--mount-proc" in ISOLATION.prefix  # commands get their own PID namespace and /proc
needs_root = pytest.mark.skipif(not AS_ROOT, reason="only root can switch users")


def run(work: Awaitable[T]) -> T:
    async def go() -> T:
        return await work

    return asyncio.run(go())


@pytest.fixture(autouse=True)
def default_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's defaults, whatever the environment running the tests sets."""
    for name in list(os.environ):
        if name.startswith("TPC_AGENT_"):
            monkeypatch.delenv(name)


async def in_workspace(command: str, *, timeout_s: float = 30, **options: Any) -> Any:
    async with Workspace.create(None, "run_sandbox") as workspace:
        return await workspace.run(command, timeout_s=timeout_s, **options)


# -- the user -------------------------------------------------------------------------------


def test_commands_run_as_the_agent_user_in_a_workspace_it_owns(tmp_path: Path) -> None:
    template = tmp_path / "template"
    template.mkdir()
    (template / "private.txt").write_text("the template's\n")
    (template / "private.txt").chmod(0o600)

    async def go() -> Path:
        async with Workspace.create(str(template), "run_user") as workspace:
            assert workspace.path.stat().st_uid == AGENT_UID
            result = await workspace.run(
                "id -u; echo $USER; cat private.txt; echo made > new.txt", timeout_s=30
            )
            assert b"unshare" not in result.stderr  # the shell in between may say "Killed"
            lines = result.stdout.decode().splitlines()
            assert lines[0] == str(AGENT_UID)
            assert lines[2] == "the template's"
            assert (workspace.path / "new.txt").stat().st_uid == AGENT_UID
            return workspace.path

    path = run(go())
    assert not path.exists()  # removed, although the agent user's files are in it


@pytest.fixture
def root_only_file() -> Iterator[Path]:
    """A file only its owner may read, in a folder everyone may enter (pytest's tmp_path is
    under a folder only root may enter, which would prove nothing)."""
    folder = Path(tempfile.mkdtemp(prefix="tpc-test-secret-"))
    folder.chmod(0o755)
    secret = folder / "credentials"
    secret.write_text("sk-secret\n")
    secret.chmod(0o600)
    yield secret
    secret.unlink()
    folder.rmdir()


@needs_root
@pytest.mark.parametrize("mode", ["none", "loopback", "full"])
def test_the_agent_user_cannot_read_the_servers_files_or_environment(
    monkeypatch: pytest.MonkeyPatch, root_only_file: Path, mode: NetworkMode
) -> None:
    full_allowed(monkeypatch)
    server = f"/proc/{os.getpid()}/environ"
    result = run(in_workspace(f"cat {root_only_file}; cat {server}", network=mode))
    assert result.stdout == b""
    assert result.stderr.count(b"Permission denied") == 1 + (not OWN_PROC), result.stderr
    if OWN_PROC:  # the server's processes are not even there
        assert b"No such file" in result.stderr
    if not OWN_PROC:
        assert os.stat("/proc/1").st_uid == 0
        result = run(in_workspace("cat /proc/1/environ", network=mode))
        assert (result.stdout, b"Permission denied" in result.stderr) == (b"", True)


@needs_root
def test_other_runs_processes_are_hidden_where_namespaces_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs executing at once share the agent user: where the command has its own /proc, one
    cannot read another's environment (its API key)."""
    full_allowed(monkeypatch)
    other = subprocess.Popen(
        ["sleep", "60"], env={"PATH": os.defpath, "OTHER_RUNS_KEY": "sk-other"}, user=NOBODY
    )
    try:
        for mode in ("none", "loopback", "full"):
            found = run(in_workspace("cat /proc/[0-9]*/environ | tr '\\0' '\\n'", network=mode))
            assert (b"OTHER_RUNS_KEY=sk-other" in found.stdout) is (not OWN_PROC), mode
    finally:
        other.kill()
        other.wait()


def test_root_is_refused_unless_the_operator_allows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPC_AGENT_USER", "root")
    if AS_ROOT:
        with pytest.raises(RunnerError, match="TPC_AGENT_ALLOW_ROOT=1"):
            run(in_workspace("id -u"))
    monkeypatch.setenv("TPC_AGENT_ALLOW_ROOT", "1")
    result = run(in_workspace("id -u"))
    assert result.stdout == f"{os.geteuid()}\n".encode()


@needs_root
def test_a_user_that_does_not_exist_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPC_AGENT_USER", "no-such-agent-user")
    with pytest.raises(RunnerError, match="TPC_AGENT_USER=no-such-agent-user: no such user"):
        run(in_workspace("id -u"))


def test_root_refused_makes_a_command_run_errored_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not AS_ROOT:
        pytest.skip("a server that is not root never runs commands as root")
    monkeypatch.setenv("TPC_AGENT_USER", "0")
    req = RunRequest(
        run_id="run_root",
        task_id="task_1",
        environment_id="env_1",
        repeat=0,
        attempt=1,
        task={"name": "t", "prompt": "hi"},
        environment={"name": "e", "agent": {"kind": "command", "command": ["true"]}},
    )
    with pytest.raises(SandboxError, match="refusing to run agent commands as root"):
        run(CommandRunner().run(req))


def test_files_the_write_file_tool_writes_belong_to_the_agent_user() -> None:
    async def go() -> None:
        async with Workspace.create(None, "run_tools") as workspace:
            toolbox = build_toolbox(
                ["write_file", "shell"], workspace, None, network="none", shell_timeout_s=10
            )
            await toolbox.call("write_file", {"path": "src/deep/a.txt", "content": "one"})
            assert (workspace.path / "src").stat().st_uid == AGENT_UID
            changed = await toolbox.call("shell", {"command": "echo two >> src/deep/a.txt"})
            assert not changed.is_error, changed.content
            assert (workspace.path / "src/deep/a.txt").read_text() == "onetwo\n"

    run(go())


def test_an_output_file_symlinked_outside_the_workspace_is_not_read(
    monkeypatch: pytest.MonkeyPatch, root_only_file: Path
) -> None:
    req = RunRequest(
        run_id="run_link",
        task_id="task_1",
        environment_id="env_1",
        repeat=0,
        attempt=1,
        task={"name": "t", "prompt": "hi"},
        environment={
            "name": "e",
            "agent": {
                "kind": "command",
                "command": ["ln", "-s", str(root_only_file), "out.jsonl"],
                "output_file": "out.jsonl",
            },
        },
    )
    with pytest.raises(RunnerError, match="leads outside the workspace") as caught:
        run(CommandRunner().run(req))
    assert "sk-secret" not in str(caught.value)


# -- resource limits ------------------------------------------------------------------------


def limits(text: bytes) -> dict[str, str]:
    """/proc/self/limits: name -> soft limit."""
    rows = text.decode().splitlines()[1:]
    return {row[:26].strip(): row[26:].split()[0] for row in rows}


def test_every_command_gets_the_resource_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(in_workspace("cat /proc/self/limits", timeout_s=2.5))
    found = limits(result.stdout)
    assert found["Max cpu time"] == "3"  # the command's time limit, rounded up
    assert found["Max address space"] == str(4096 * 1024 * 1024)
    assert found["Max processes"] == "1024"
    assert found["Max file size"] == str(1024 * 1024 * 1024)

    monkeypatch.setenv("TPC_AGENT_CPU_S", "7")
    monkeypatch.setenv("TPC_AGENT_MEMORY_MB", "0")  # no limit
    monkeypatch.setenv("TPC_AGENT_PROCESSES", "50")
    found = limits(run(in_workspace("cat /proc/self/limits")).stdout)
    assert (found["Max cpu time"], found["Max processes"]) == ("7", "50")
    assert found["Max address space"] == "unlimited"


def test_a_file_larger_than_the_limit_cannot_be_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPC_AGENT_FILE_MB", "1")

    async def go() -> int:
        async with Workspace.create(None, "run_fsize") as workspace:
            result = await workspace.run("head -c 3000000 /dev/zero > big", timeout_s=30)
            assert result.exit_code != 0
            return (workspace.path / "big").stat().st_size

    assert run(go()) == 1024 * 1024


def test_a_command_past_its_cpu_seconds_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPC_AGENT_CPU_S", "1")
    result = run(in_workspace("while :; do :; done", timeout_s=120))
    assert not result.timed_out
    assert result.exit_code in (-signal.SIGXCPU, -signal.SIGKILL), result
    assert b"unshare" not in result.stderr  # the shell in between may say "Killed"


def test_without_limits_prlimit_is_not_in_the_way(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CPU_S", "MEMORY_MB", "PROCESSES", "FILE_MB"):
        monkeypatch.setenv(f"TPC_AGENT_{name}", "0")
    result = run(in_workspace("echo only this"))
    assert result.stdout == b"only this\n"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TPC_AGENT_CPU_S", "soon", "TPC_AGENT_CPU_S must be a whole number"),
        ("TPC_AGENT_MEMORY_MB", "-1", "TPC_AGENT_MEMORY_MB must be a whole number"),
        ("TPC_AGENT_ALLOW_ROOT", "maybe", "TPC_AGENT_ALLOW_ROOT must be 1 or 0"),
        ("TPC_AGENT_NETWORK_MAX", "internet", "TPC_AGENT_NETWORK_MAX must be one of none"),
    ],
)
def test_a_bad_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        SandboxSettings.from_env()
    with pytest.raises(RunnerError, match=message):  # a run using it ends errored
        run(in_workspace("true"))


# -- network --------------------------------------------------------------------------------


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A listening TCP socket on 127.0.0.1 of the host's (the server's) network namespace."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def connect(port: int) -> str:
    return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo connected || echo no"


SERVE_AND_CALL = (
    "python3 -c \"import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
    "socket.create_connection(s.getsockname(), timeout=5); print('served')\""
)


def full_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPC_AGENT_NETWORK_MAX", "full")


def test_full_reaches_the_hosts_loopback(
    monkeypatch: pytest.MonkeyPatch, host_listener: int
) -> None:
    full_allowed(monkeypatch)
    result = run(in_workspace(connect(host_listener), network="full"))
    assert result.stdout == b"connected\n"


@pytest.mark.parametrize("mode", ["none", "loopback"])
def test_none_and_loopback_do_not_reach_the_hosts_loopback(
    monkeypatch: pytest.MonkeyPatch, host_listener: int, mode: NetworkMode
) -> None:
    full_allowed(monkeypatch)
    result = run(in_workspace(f"{connect(host_listener)}; env", network=mode))
    if ISOLATION.namespaced:
        assert result.stdout.startswith(b"no\n")
        assert b"https_proxy" not in result.stdout
    else:  # only well-behaved clients are stopped: they get a closed proxy
        assert f"https_proxy={CLOSED_PROXY}".encode() in result.stdout


def test_loopback_serves_its_own_loopback_and_none_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full_allowed(monkeypatch)
    own = run(in_workspace(SERVE_AND_CALL, network="loopback"))
    nothing = run(in_workspace(SERVE_AND_CALL, network="none"))
    if ISOLATION.namespaced and not ISOLATION.loopback:
        assert own.exit_code != 0  # `lo` cannot be brought up here: as strict as none
    else:
        assert own.stdout == b"served\n", own.stderr
    if ISOLATION.namespaced:
        assert nothing.exit_code != 0
        assert b"served" not in nothing.stdout
    else:
        assert nothing.stdout == b"served\n"  # nothing to take the host's loopback away


def test_the_operators_cap_refuses_more_and_is_the_default(host_listener: int) -> None:
    with pytest.raises(SandboxError, match="TPC_AGENT_NETWORK_MAX=loopback"):
        run(in_workspace("true", network="full"))
    # Asking for nothing in particular gets the cap (loopback): not the host's loopback.
    result = run(in_workspace(connect(host_listener)))
    assert result.stdout == (b"no\n" if ISOLATION.namespaced else b"connected\n")


def test_an_environment_asking_for_more_than_the_cap_is_refused_at_creation() -> None:
    def environment(agent: dict[str, Any]) -> Any:
        return parse_environment({"name": "e", "agent": agent})

    llm = {"kind": "llm", "provider": "openai", "model": "m", "network": True}
    check_network(environment(llm), "none")  # without the shell tool it runs no commands
    full_llm = environment({**llm, "tools": ["shell"]})
    assert full_llm.agent.network == "full"  # the original boolean still means full / none
    with pytest.raises(InvalidInput) as caught:
        check_network(full_llm, "loopback")
    assert caught.value.problems[0][0] == "agent.network"
    assert "TPC_AGENT_NETWORK_MAX=loopback" in caught.value.problems[0][1]
    check_network(full_llm, "full")
    command = environment({"kind": "command", "command": "x"})
    check_network(command, "none")  # unset: whatever the operator allows
    with pytest.raises(InvalidInput, match=r"agent\.network"):
        check_network(environment({"kind": "command", "command": "x", "network": "full"}), "none")


def test_a_command_agent_asking_for_more_than_the_cap_ends_errored() -> None:
    req = RunRequest(
        run_id="run_cap",
        task_id="task_1",
        environment_id="env_1",
        repeat=0,
        attempt=1,
        task={"name": "t", "prompt": "hi"},
        environment={
            "name": "e",
            "agent": {"kind": "command", "command": ["true"], "network": "full"},
        },
    )
    with pytest.raises(SandboxError, match="network 'full' is more than this server allows"):
        run(CommandRunner().run(req))


def test_another_runs_workspace_cannot_be_found() -> None:
    """Runs share the agent user, so each workspace hides behind a folder only root lists."""

    async def go() -> None:
        async with (
            Workspace.create(None, "run_mine") as mine,
            Workspace.create(None, "run_other") as other,
        ):
            (other.path / "answer.txt").write_text("the other tenant's\n")
            assert stat.S_IMODE(other.path.stat().st_mode) == 0o700
            command = f"ls {other.path.parent}; cat /tmp/tpc-*/answer.txt /tmp/tpc-*/*/answer.txt"
            result = await mine.run(command, timeout_s=30)
            assert b"the other tenant's" not in result.stdout
            if AS_ROOT:
                assert stat.S_IMODE(other.path.parent.stat().st_mode) == 0o711
                assert b"Permission denied" in result.stderr

    run(go())


@pytest.mark.parametrize("mode", ["none", "full"])
def test_postgresqls_unix_sockets_are_hidden_where_commands_get_a_mount_namespace(
    monkeypatch: pytest.MonkeyPatch, mode: NetworkMode
) -> None:
    """No network namespace takes a Unix socket away (PostgreSQL with `trust` would let the
    agent in as any database user): an empty folder is mounted over its folder."""
    sockets = Path("/run/postgresql")
    if not sockets.is_dir() or not any(p.name.startswith(".s.PGSQL") for p in sockets.iterdir()):
        pytest.skip("no PostgreSQL sockets on this machine")
    full_allowed(monkeypatch)
    result = run(in_workspace(f"ls -A {sockets} /var/run/postgresql", network=mode))
    hidden = OWN_PROC and not ISOLATION.user_namespace
    assert (b".s.PGSQL" not in result.stdout) is hidden, result.stdout
    if hidden and shutil.which("psql"):
        login = run(in_workspace(f"psql -h {sockets} -U postgres -c 'select 1'", network=mode))
        assert login.exit_code != 0
        assert b"No such file" in login.stderr, login.stderr
    assert any(p.name.startswith(".s.PGSQL") for p in sockets.iterdir())  # the host keeps it


def test_without_namespaces_the_user_and_the_limits_still_hold() -> None:
    """What a machine where `unshare` works nowhere gives (as if the probe found nothing)."""

    async def go() -> bytes:
        async with Workspace.create(None, "run_plain", isolation=NO_ISOLATION) as workspace:
            result = await workspace.run("id -u; env; cat /proc/self/limits", timeout_s=30)
            return bytes(result.stdout)

    out = run(go())
    assert out.startswith(f"{AGENT_UID}\n".encode())
    assert f"https_proxy={CLOSED_PROXY}".encode() in out  # the cap, loopback: no namespace
    assert b"Max file size             1073741824" in out
