"""Per-run workspaces: a fresh folder for each run, and the commands run inside it.

A workspace is a temporary directory with the environment's template folder copied in,
owned by the user commands run as, and removed when the run ends (also when it is
cancelled). Every product-supplied command runs here (`Workspace.run`), sandboxed by the
operator's settings (sandbox.py): as an unprivileged user, under resource limits, with the
network its environment may have. Commands run with the workspace as their working directory
and HOME, in a new session (process group) with a minimal clean environment: the server's
secrets never leak into an agent's commands. When a command ends, times out or its task is
cancelled, its whole process group is killed, so nothing it started outlives it.

Where `unshare` works here, every command gets its own PID namespace and /proc (so even a
process that starts its own session dies with the command, and other runs' processes cannot
be seen), and network `none` and `loopback` their own network namespace; where it does not,
those only get proxy variables pointing at a closed port (see docs/environments.md: that
stops well-behaved HTTP clients, not a determined program).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from domain.network_policy import NetworkMode
from infra.runners.base import RunnerError
from infra.runners.sandbox import AgentUser, SandboxSettings
from infra.settings import SettingsError

T = TypeVar("T")

OUTPUT_LIMIT = 1_000_000  # bytes kept of each of stdout and stderr
TERM_GRACE_S = 2.0  # between SIGTERM and SIGKILL
PIPE_WAIT_S = 2.0  # for pipes still held open by an escaped process, once the command ended
READ_CHUNK = 65_536
# A closed loopback port (the discard port is never served on these machines): clients that
# honour proxy variables fail fast instead of reaching the network.
CLOSED_PROXY = "http://127.0.0.1:9"
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_INHERITED = ("PATH", "LANG", "USER", "LOGNAME", "TZ")
# Run as root inside a new network namespace: its `lo` starts down; up, commands can serve
# and call localhost (their own, not the host's).
_BRING_UP_LOOPBACK = "ip link set lo up >/dev/null 2>&1"
# Run as root inside a new mount namespace (private: nothing reaches the host's): an empty
# folder over PostgreSQL's Unix sockets, which no network namespace takes away.
_HIDDEN_FOLDERS = ("/run/postgresql", "/var/run/postgresql")
_HIDE = "; ".join(
    f"[ -d {folder} ] && mount -t tmpfs -o size=4k,mode=755 hidden {folder} >/dev/null 2>&1"
    for folder in _HIDDEN_FOLDERS
)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended. `exit_code` is None when it was killed for its time limit, and
    negative (-signal) when a signal ended it otherwise. Output beyond `OUTPUT_LIMIT` bytes
    per stream is dropped, with a note saying how much at the end."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool


@dataclass(frozen=True, slots=True)
class Isolation:
    """How this machine gives commands a network namespace of their own."""

    prefix: tuple[str, ...]  # the `unshare …` command that wraps them; empty: none works
    loopback: bool  # whether the namespace's loopback interface can be brought up

    @property
    def namespaced(self) -> bool:
        return bool(self.prefix)

    @property
    def user_namespace(self) -> bool:
        """Whether it is an unprivileged namespace (which a switched user can still enter)."""
        return "--map-current-user" in self.prefix or "--map-root-user" in self.prefix

    def wrap(self, argv: list[str], mode: NetworkMode, switch: list[str]) -> tuple[list[str], bool]:
        """`argv` with network `mode`, run as the user `switch` (a `setpriv …`) changes to,
        and whether a signal that ends the command is told by an exit code of 128 + signal.

        A privileged namespace is entered as root and the user switched inside it, after `lo`
        is up; an unprivileged one is entered after switching (the user then creates it).
        `full` keeps the host's network but still gets the PID namespace and its /proc."""
        prefix = self.prefix
        if mode == "full":
            has_pid = "--mount-proc" in prefix
            prefix = tuple(flag for flag in prefix if flag != "--net") if has_pid else ()
        if not prefix:
            return [*switch, *argv], False
        outer, inner = (switch, []) if self.user_namespace else ([], switch)
        setup = []
        if "--mount-proc" in prefix:  # a mount namespace of its own
            setup.append(_HIDE)
        if mode == "loopback" and self.loopback:
            setup.append(_BRING_UP_LOOPBACK)
        command = [*inner, *argv]
        with_init = "--pid" in prefix
        if with_init:
            # A shell, not the command, is the namespace's process 1: the command then gets
            # signals it has no handler for (SIGTERM first), and how it ended is told by an
            # exit code (`unshare` fails to pass a signal on).
            setup.append('"$@"; exit $?')
        elif setup:
            setup.append('exec "$@"')
        if setup:
            command = ["/bin/sh", "-c", "; ".join(setup), "sh", *command]
        return [*outer, *prefix, "--", *command], with_init


NO_ISOLATION = Isolation((), False)
# Tried in order: privileged (keeps the user id, can bring `lo` up), then with a user
# namespace that keeps the user id, then one that maps it to root; each with a PID namespace
# and its own /proc first (other runs' processes, their environment and working folder then
# cannot be seen), then a PID namespace alone, then neither (some containers forbid them).
_CANDIDATES: tuple[tuple[str, ...], ...] = tuple(
    (*net, *user)
    for user in ((), ("--map-current-user",), ("--map-root-user",))
    for net in (
        ("--net", "--pid", "--kill-child", "--mount-proc"),
        ("--net", "--pid", "--kill-child"),
        ("--net",),
    )
)


@functools.cache
def network_isolation() -> Isolation:
    """Probe once per process which `unshare` invocation works here (the answer is cached)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return NO_ISOLATION
    for flags in _CANDIDATES:
        try:
            done = subprocess.run(
                [unshare, *flags, "--", "/bin/sh", "-c", "exit 0"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            keeps_caps = "--map-current-user" not in flags
            return Isolation((unshare, *flags), keeps_caps and shutil.which("ip") is not None)
    return NO_ISOLATION


class Workspace:
    """A run's private folder and the commands run in it (see the module's docstring).

    `settings` default to `SandboxSettings.from_env()`; `isolation` overrides the probed
    network isolation (tests use `NO_ISOLATION`). Raises RunnerError when the settings do not
    allow commands to run at all (a bad TPC_AGENT_* value, root without permission)."""

    def __init__(
        self,
        path: Path,
        isolation: Isolation | None = None,
        settings: SandboxSettings | None = None,
    ) -> None:
        self.path = path
        self._isolation = isolation
        if settings is None:
            try:
                settings = SandboxSettings.from_env()
            except SettingsError as error:
                raise RunnerError(str(error)) from None
        self.settings = settings
        self.user: AgentUser | None = settings.agent_user()  # None: this process's own user

    @classmethod
    @contextlib.asynccontextmanager
    async def create(
        cls,
        template: str | None,
        run_id: str,
        *,
        isolation: Isolation | None = None,
        settings: SandboxSettings | None = None,
    ) -> AsyncIterator[Workspace]:
        """A fresh temporary folder with `template`'s contents, owned by the user commands
        run as, removed on exit."""
        source = await asyncio.to_thread(Path(template).expanduser) if template else None
        if source is not None and not await asyncio.to_thread(source.is_dir):
            raise RunnerError(
                f"workspace template {template!r} is not a folder on the machine that runs "
                "the agent (give an absolute path that exists where `tpc serve` or `tpc worker` "
                "runs)"
            )
        safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:40]
        # The workspace is a folder with a secret name in a folder only root may list: other
        # runs' commands (the same agent user) see `/tmp/tpc-…` but cannot find their way in.
        parent = Path(tempfile.mkdtemp(prefix=f"tpc-{safe_id}-"))
        path = parent / f"tpc-{safe_id}-{secrets.token_hex(16)}"
        try:
            await asyncio.to_thread(path.mkdir, mode=0o700)
            workspace = cls(path, isolation, settings)
            if workspace.user is not None:
                await asyncio.to_thread(parent.chmod, 0o711)
            if source is not None:
                copy = asyncio.to_thread(
                    shutil.copytree, source, path, symlinks=True, dirs_exist_ok=True
                )
                try:
                    await _uninterrupted(copy)
                except (OSError, shutil.Error) as error:
                    message = f"cannot copy workspace template {template!r}: {error}"
                    raise RunnerError(message) from None
            await _uninterrupted(asyncio.to_thread(workspace._hand_over_tree))
            yield workspace
        finally:
            await _uninterrupted(asyncio.to_thread(_remove_tree, parent))

    def hand_over(self, path: Path) -> None:
        """Give `path` (a file the server wrote in the workspace) and its folders up to the
        workspace to the user commands run as, so they can change it."""
        if self.user is None:
            return
        for each in (path, *path.parents):
            if each == self.path:
                break
            os.lchown(each, self.user.uid, self.user.gid)

    def _hand_over_tree(self) -> None:
        if self.user is None:
            return
        uid, gid = self.user.uid, self.user.gid
        os.chown(self.path, uid, gid)
        for folder, names, files in os.walk(self.path):
            for name in (*names, *files):
                os.lchown(os.path.join(folder, name), uid, gid)

    async def run(
        self,
        argv: Sequence[str] | str,
        *,
        timeout_s: float,
        env: Mapping[str, str] | None = None,
        network: NetworkMode | None = None,
        stdin: bytes | None = None,
        on_stdout_line: Callable[[bytes], None] | None = None,
    ) -> CommandResult:
        """Run a command in the workspace: a string through `/bin/sh -c`, a list as is.

        It runs as `self.user`, under the resource limits, with `network` (None: the most the
        operator allows; more than that raises SandboxError, a RunnerError).
        `on_stdout_line` receives every line of stdout as it arrives (without its newline, and
        whole, however long); an exception it raises stops the command and propagates.
        A command that cannot be started gives exit code 127 and the reason on stderr.
        """
        args = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
        if not args:
            raise ValueError("no command to run")
        mode = self.settings.network_for(network)
        isolation = self._isolation
        if isolation is None:
            isolation = await asyncio.to_thread(network_isolation)
        switch = self.user.switch_argv() if self.user is not None else []
        limits = self.settings.limits_argv(timeout_s)
        wrapped, signal_as_code = isolation.wrap(args, mode, switch)
        args = [*limits, *wrapped]
        loop = asyncio.get_running_loop()
        start = loop.subprocess_exec(
            lambda: _Protocol(on_stdout_line),
            *args,
            cwd=self.path,
            env=self._environment(env, mode, isolation),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        # Cancelling asyncio while it connects a new process's pipes can hang it for good
        # (CPython 3.11 waits for pipes it never connected): let the start finish, then stop
        # what was started.
        started = asyncio.ensure_future(start)
        cancelled = False
        while not started.done():
            try:
                await asyncio.shield(started)
            except asyncio.CancelledError:
                cancelled = True  # from this task, never from the shielded start
            except OSError:
                pass
        if isinstance(started.exception(), OSError):
            if cancelled:
                raise asyncio.CancelledError
            error = started.exception()
            message = f"{args[0]}: cannot run: {getattr(error, 'strerror', None) or error}\n"
            return CommandResult(127, b"", message.encode(), False)
        transport, protocol = started.result()
        if cancelled:
            await _uninterrupted(_end(transport, protocol, transport.get_pid()))
            raise asyncio.CancelledError
        result = await _supervise(transport, protocol, timeout_s, stdin)
        if signal_as_code and result.exit_code is not None and result.exit_code > 128:
            result = dataclasses.replace(result, exit_code=128 - result.exit_code)
        return _unwrapped_start_failure(result)

    async def check(self, command: str, *, timeout_s: float) -> bool:
        """The task's `command` success criterion: exit 0 through `/bin/sh -c` here. It is the
        task author's check, not the agent's: it gets the most network the operator allows,
        but is sandboxed like the agent (a task author is a tenant too)."""
        result = await self.run(command, timeout_s=timeout_s)
        return not result.timed_out and result.exit_code == 0

    def _environment(
        self, extra: Mapping[str, str] | None, mode: NetworkMode, isolation: Isolation
    ) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
        env.setdefault("PATH", os.defpath)
        env.setdefault("LANG", "C.UTF-8")
        if self.user is not None:
            env["USER"] = env["LOGNAME"] = self.user.name
            path = env["PATH"].split(os.pathsep)
            env["PATH"] = os.pathsep.join(p for p in path if self.user.can_enter(p))
        env["HOME"] = str(self.path)
        env.update(extra or {})
        if mode != "full" and not isolation.namespaced:
            env.update(dict.fromkeys(_PROXY_VARS, CLOSED_PROXY))
            env["no_proxy"] = env["NO_PROXY"] = ""
        return env


# How the wrappers (prlimit, setpriv, unshare, the loopback's `sh`) say that the command
# itself could not be started.
_START_FAILURE = re.compile(
    rb"(?:(?:prlimit|setpriv|unshare): failed to execute|sh: \d+:(?: exec:)?) (.+): ([^:\n]+)\n?"
)


def _unwrapped_start_failure(result: CommandResult) -> CommandResult:
    """A command that could not be started, told as if it had been started directly."""
    found = _START_FAILURE.fullmatch(result.stderr) if result.exit_code in (126, 127) else None
    if found is None:
        return result
    message = found.group(1) + b": cannot run: " + found.group(2) + b"\n"
    return CommandResult(127, result.stdout, message, result.timed_out)


class _Protocol(asyncio.SubprocessProtocol):
    """Collects a command's output and tells when it exited (before its pipes close: a
    background process may hold them) and when everything is closed."""

    def __init__(self, on_line: Callable[[bytes], None] | None) -> None:
        self.stdout = _Capture(on_line)
        self.stderr = _Capture(None)
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self.failed = asyncio.Event()
        self.error: BaseException | None = None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        capture = self.stdout if fd == 1 else self.stderr
        self._guard(capture.add, data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._guard(lambda _: self.stdout.end(), b"")

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def _guard(self, action: Callable[[bytes], None], data: bytes) -> None:
        # The line handler runs inside the event loop's callback: its error is kept for the
        # supervising task (which stops the command) instead of being lost in the loop's log.
        try:
            action(data)
        except Exception as error:
            self.stdout.stop_lines()
            if self.error is None:
                self.error = error
                self.failed.set()


async def _supervise(
    transport: asyncio.SubprocessTransport,
    protocol: _Protocol,
    timeout_s: float,
    stdin: bytes | None,
) -> CommandResult:
    """Wait for the command under its time limit; whatever happens (exit, time limit,
    cancellation, a failing line handler), kill its whole group and close its pipes."""
    pid = transport.get_pid()
    writer = transport.get_pipe_transport(0)
    if isinstance(writer, asyncio.WriteTransport):
        if stdin:
            writer.write(stdin)
        writer.close()
    timed_out = False
    try:
        timed_out = not await _first(protocol.exited, protocol.failed, timeout_s)
        if protocol.error is not None:
            raise protocol.error
    finally:
        await _uninterrupted(_end(transport, protocol, pid))
    exit_code = None if timed_out else transport.get_returncode()
    return CommandResult(exit_code, protocol.stdout.value(), protocol.stderr.value(), timed_out)


async def _end(transport: asyncio.SubprocessTransport, protocol: _Protocol, pid: int) -> None:
    if not protocol.exited.is_set():  # timed out, cancelled, or the line handler failed
        _signal_group(pid, signal.SIGTERM)
        await _first(protocol.exited, None, TERM_GRACE_S)
    # Whatever the command left running in its group ends with it.
    _signal_group(pid, signal.SIGKILL)
    await protocol.exited.wait()
    # A process that left the group (setsid) may still hold the pipes: stop waiting for them.
    await _first(protocol.closed, None, PIPE_WAIT_S)
    transport.close()


async def _first(event: asyncio.Event, other: asyncio.Event | None, timeout_s: float) -> bool:
    """Wait until `event` or `other` is set; False when neither is within the time."""
    waits = [asyncio.ensure_future(e.wait()) for e in (event, other) if e is not None]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return bool(done)


class _Capture:
    """One output stream: the first `OUTPUT_LIMIT` bytes kept, lines passed on as they come."""

    def __init__(self, on_line: Callable[[bytes], None] | None) -> None:
        self._on_line = on_line
        self._kept = bytearray()
        self._dropped = 0
        self._partial: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        room = max(0, OUTPUT_LIMIT - len(self._kept))
        self._kept += chunk[:room]
        self._dropped += max(0, len(chunk) - room)
        if self._on_line is None:
            return
        if b"\n" not in chunk:
            self._partial.append(chunk)
            return
        *lines, rest = chunk.split(b"\n")
        lines[0] = b"".join([*self._partial, lines[0]])
        self._partial = [rest] if rest else []
        for line in lines:
            self._on_line(line)

    def end(self) -> None:
        """The stream closed: a last line without a newline is still a line."""
        if self._on_line is not None and self._partial:
            last, self._partial = b"".join(self._partial), []
            self._on_line(last)

    def stop_lines(self) -> None:
        self._on_line = None

    def value(self) -> bytes:
        if not self._dropped:
            return bytes(self._kept)
        return bytes(self._kept) + f"\n[output truncated: {self._dropped} more bytes]\n".encode()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _uninterrupted(work: Awaitable[T]) -> T:
    """Finish `work` even if this task is cancelled meanwhile (cleanup must complete), then
    let the cancellation through."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


def _remove_tree(path: Path) -> None:
    def make_writable(function: Callable[..., Any], name: str, _info: Any) -> None:
        # Agents leave read-only files and folders (e.g. Go's module cache) behind.
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        with contextlib.suppress(FileNotFoundError):
            if not os.path.islink(name) and os.path.isdir(name):
                os.chmod(name, stat.S_IRWXU)
            function(name)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable)
    else:
        shutil.rmtree(path, onerror=make_writable)
