"""The operator's sandbox for product-supplied commands: which user they run as, their
resource limits and how much network they may have (TPC_AGENT_* settings).

`Workspace.run` (workspace.py) applies them to every such command: a `command` agent, the
task's `success.command` check and the `llm` agent's `shell` tool.

A server running as root switches every command to `TPC_AGENT_USER` (default `nobody`) with
`setpriv`; it refuses to run them as root unless `TPC_AGENT_ALLOW_ROOT=1`. A server that is not
root cannot switch users: commands run as its own user, so that user must own nothing a
product may not read. Limits are set with `prlimit` (both from util-linux).
"""

from __future__ import annotations

import math
import os
import pwd
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from domain.network_policy import CAP_SETTING, NETWORK_MODES, NetworkMode, exceeds, refusal
from infra.runners.base import RunnerError
from infra.settings import SettingsError

MB = 1024 * 1024


class SandboxError(RunnerError):
    """A command the sandbox refuses to run (the run ends `errored` with this message)."""


@dataclass(frozen=True, slots=True)
class AgentUser:
    """The unprivileged user commands are switched to."""

    name: str
    uid: int
    gid: int

    def can_enter(self, folder: str) -> bool:
        """Whether this user can search `folder` and every folder above it (a server's PATH
        may name folders under root's home, which this user cannot enter)."""
        path = Path(folder)
        if not path.is_absolute():
            return False
        for each in (path, *path.parents):
            try:
                info = each.stat()
            except OSError:
                return False
            if info.st_uid == self.uid:
                bit = stat.S_IXUSR
            elif info.st_gid == self.gid:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not info.st_mode & bit:
                return False
        return True

    def switch_argv(self) -> list[str]:
        """`setpriv` switching to this user: no supplementary groups (root's are dropped) and
        no new privileges (setuid programs such as `su` or `sudo` cannot raise them again)."""
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxError(
                "setpriv (util-linux) is needed to run agent commands as "
                f"TPC_AGENT_USER={self.name}: install util-linux"
            )
        return [
            setpriv,
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ]


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """TPC_AGENT_* (docs/deployment.md). Limits of 0 mean no limit."""

    user: str = "nobody"  # a user name or a numeric uid
    allow_root: bool = False
    cpu_s: int | None = None  # CPU seconds per process; None: the command's time limit
    memory_mb: int = 4096  # address space per process
    processes: int = 1024  # per user id: shared by the commands of every run at once
    file_mb: int = 1024  # the largest file a command may write
    network_max: NetworkMode = "loopback"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxSettings:
        """The settings, or SettingsError naming the variable that cannot be used."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        user = env.get("TPC_AGENT_USER", "").strip()
        if user:
            values["user"] = user
        allow = env.get("TPC_AGENT_ALLOW_ROOT", "").strip().lower()
        if allow:
            if allow not in _BOOLEANS:
                raise SettingsError(f"TPC_AGENT_ALLOW_ROOT must be 1 or 0 (got {allow!r})")
            values["allow_root"] = _BOOLEANS[allow]
        for name, key in _LIMITS.items():
            raw = env.get(name, "").strip()
            if raw:
                values[key] = _count(name, raw)
        cap = env.get(CAP_SETTING, "").strip().lower()
        if cap:
            if cap not in NETWORK_MODES:
                raise SettingsError(
                    f"{CAP_SETTING} must be one of {', '.join(NETWORK_MODES)} (got {cap!r})"
                )
            values["network_max"] = cap
        return cls(**values)  # type: ignore[arg-type]

    def agent_user(self) -> AgentUser | None:
        """Who commands run as: `TPC_AGENT_USER` when this process is root; None (this
        process's own user, no switch) otherwise, or for root when root is allowed.

        Raises SandboxError for a user that does not exist, and for root without
        `TPC_AGENT_ALLOW_ROOT=1`."""
        if os.geteuid() != 0:
            return None  # an unprivileged server cannot switch users
        user = _resolve(self.user)
        if user.uid == 0:
            if self.allow_root:
                return None
            raise SandboxError(
                f"refusing to run agent commands as root (TPC_AGENT_USER={self.user}): set "
                "TPC_AGENT_USER to an unprivileged user (default nobody), or "
                "TPC_AGENT_ALLOW_ROOT=1 to allow root"
            )
        return user

    def network_for(self, requested: NetworkMode | None) -> NetworkMode:
        """The network a command gets: what it asks for, or the cap when it asks for nothing
        in particular. SandboxError when it asks for more than the cap."""
        if requested is None:
            return self.network_max
        if exceeds(requested, self.network_max):
            raise SandboxError(refusal(requested, self.network_max))
        return requested

    def limits_argv(self, timeout_s: float) -> list[str]:
        """`prlimit` setting the resource limits (soft and hard) of a command whose time limit
        is `timeout_s`."""
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            raise SandboxError("prlimit (util-linux) is needed to limit agent commands")
        cpu = self.cpu_s if self.cpu_s is not None else max(1, math.ceil(timeout_s))
        limits = {
            "--cpu": cpu,
            "--as": self.memory_mb * MB,
            "--nproc": self.processes,
            "--fsize": self.file_mb * MB,
        }
        flags = [f"{flag}={value}" for flag, value in limits.items() if value]
        # Without a limit to set, prlimit would print the current ones instead.
        return [prlimit, *flags, "--"] if flags else []


_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_LIMITS = {
    "TPC_AGENT_CPU_S": "cpu_s",
    "TPC_AGENT_MEMORY_MB": "memory_mb",
    "TPC_AGENT_PROCESSES": "processes",
    "TPC_AGENT_FILE_MB": "file_mb",
}


def _count(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SettingsError(f"{name} must be a whole number, 0 for no limit (got {raw!r})")
    return value


def _resolve(user: str) -> AgentUser:
    """A user name, or a uid (its group: the user's own when it has an entry, else the same
    number)."""
    try:
        numeric = user.isascii() and user.isdigit()
        entry = pwd.getpwuid(int(user)) if numeric else pwd.getpwnam(user)
    except KeyError:
        if numeric:
            return AgentUser(user, int(user), int(user))
        raise SandboxError(
            f"TPC_AGENT_USER={user}: no such user on this machine (give an existing user name "
            "or a numeric uid)"
        ) from None
    return AgentUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
